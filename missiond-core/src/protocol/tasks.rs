//! Wire types of the `/tasks` stream (owned by the tasks work).
