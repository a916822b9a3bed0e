//! Claude Code task files: placeholder until the watcher lands.
