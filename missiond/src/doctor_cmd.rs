//! `missiond doctor`: the daemon's view of its setup (`GET /api/doctor`), one line per check.

use std::process::ExitCode;

use crate::client::{Client, Failure};
use crate::output::{print_json, Table};
use crate::ConnArgs;
use missiond_core::protocol::signals::{CheckStatus, DoctorReport};

pub const AFTER_HELP: &str = "\
Checks: the token files' permissions, the state rules in force (built in or your override),
and per Claude Code slot its release, whether its hooks and status line have been heard from
(when, how many) and whether the screen and the hooks ever disagreed (drift: the rules may be
wrong for that release). Exit status 1 when a check failed; each failure says what to do.

Examples:
  missiond doctor
  missiond doctor --json | jq '.checks[] | select(.status != \"ok\")'";

pub async fn run(client: &Client, conn: &ConnArgs) -> Result<ExitCode, Failure> {
    let report: DoctorReport = client.get("/api/doctor").await?;
    if conn.json {
        print_json(&report);
    } else {
        let mut table = Table::new(&["CHECK", "STATUS", "DETAIL"]);
        for c in &report.checks {
            let mut detail = c.detail.clone();
            if let Some(fix) = &c.fix {
                detail.push_str(&format!(" -> {fix}"));
            }
            table.row(vec![c.name.clone(), c.status.as_str().to_string(), detail]);
        }
        print!("{}", table.render());
    }
    Ok(if report.worst() == CheckStatus::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
