//! Readable tables on stdout.

use std::io::IsTerminal;

use lbgp_core::report::InvokeResponse;
use serde_json::Value;

use crate::Verdict;
use crate::invoke::Answer;

fn bold(text: &str) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A section heading.
pub fn heading(text: &str) {
    println!("\n{}", bold(&format!("== {text}")));
}

/// A table with a header row, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(&headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    line(&widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    if rows.is_empty() {
        println!("  (none)");
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn response(r: &InvokeResponse, dry_run: bool) {
    let changes = r.changes_total.unwrap_or(r.changes.len());
    let verb = if dry_run { "would change" } else { "changed" };
    println!(
        "  {verb} {}, {}, {}{}",
        plural(changes, "route", "routes"),
        plural(
            r.conflicts_total.unwrap_or(r.conflicts.len()),
            "conflict",
            "conflicts"
        ),
        plural(r.errors.len(), "error", "errors"),
        if r.truncated {
            " (lists cut to fit; the logs hold all)"
        } else {
            ""
        }
    );
    if let Some(refused) = &r.refused {
        println!("  refused: {refused}");
    }
    if let Some(ignored) = &r.ignored {
        println!("  ignored: {ignored}");
    }
    if r.locked {
        println!("  locked: another run holds a lease; it was asked to run again");
    }
    if r.deferred > 0 {
        println!("  deferred: {} changes left for the next run", r.deferred);
    }
    if !r.changes.is_empty() {
        let rows: Vec<Vec<String>> = r
            .changes
            .iter()
            .map(|c| {
                let target = match &c.previous_target {
                    Some(previous) => format!("{previous} → {}", c.target),
                    None => c.target.clone(),
                };
                vec![
                    c.op.clone(),
                    c.region.clone(),
                    c.route_table_id.clone(),
                    c.destination.clone(),
                    target,
                    c.reason.clone(),
                ]
            })
            .collect();
        table(
            &["op", "region", "route table", "destination", "target", "reason"],
            &rows,
        );
    }
    if !r.conflicts.is_empty() {
        println!("  conflicts (wanted, not installed, left untouched):");
        let rows: Vec<Vec<String>> = r
            .conflicts
            .iter()
            .map(|c| {
                vec![
                    c.region.clone(),
                    c.route_table_id.clone().unwrap_or_else(|| "*".to_owned()),
                    c.destination.clone(),
                    c.held_by.join(", "),
                    c.reason.clone(),
                ]
            })
            .collect();
        table(&["region", "route table", "destination", "held by", "why"], &rows);
    }
    if !r.skipped.is_empty() {
        println!("  skipped (left alone on purpose):");
        let rows: Vec<Vec<String>> = r
            .skipped
            .iter()
            .map(|s| {
                vec![
                    s.region.clone(),
                    s.resource.clone(),
                    s.destination.clone().unwrap_or_else(|| "-".to_owned()),
                    s.reason.clone(),
                ]
            })
            .collect();
        table(&["region", "resource", "destination", "why"], &rows);
    }
    if !r.errors.is_empty() {
        println!("  errors:");
        let rows: Vec<Vec<String>> = r
            .errors
            .iter()
            .map(|e| {
                vec![
                    e.region.clone(),
                    e.resource.clone().unwrap_or_else(|| "-".to_owned()),
                    e.error.clone(),
                ]
            })
            .collect();
        table(&["region", "resource", "error"], &rows);
    }
    if !r.groups.is_empty() {
        println!("  failover groups:");
        let rows: Vec<Vec<String>> = r
            .groups
            .iter()
            .map(|g| {
                ["region", "group", "vpc", "active", "decision", "reason"]
                    .iter()
                    .map(|k| text(g, k))
                    .collect()
            })
            .collect();
        table(&["region", "group", "vpc", "active", "decision", "reason"], &rows);
    }
}

/// One function's answer.
pub fn answer(answer: &Answer, dry_run: bool) {
    let mode = if dry_run { "plan (dry run)" } else { "apply" };
    heading(&format!("{} — {mode}", answer.function.name()));
    match &answer.result {
        Ok(r) => response(r, dry_run),
        Err(d) => println!("  failed: {} ({})", d.error_message, d.error_type),
    }
}

fn changes(answers: &[Answer]) -> usize {
    answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok())
        .map(|r| r.changes_total.unwrap_or(r.changes.len()))
        .sum()
}

/// The last line of `plan`.
pub fn plan_summary(answers: &[Answer], verdict: Verdict, target: &str) {
    println!();
    match verdict {
        Verdict::Converged => println!("converged: no route to change"),
        Verdict::Pending => println!(
            "{} pending — apply with: lbgpctl apply {target} --yes",
            plural(changes(answers), "change", "changes")
        ),
        Verdict::Failed => println!(
            "incomplete: a function failed or could not read everything (see the errors above); \
             {} planned",
            plural(changes(answers), "change", "changes")
        ),
    }
}

/// The last line of `apply`.
pub fn apply_summary(answers: &[Answer], verdict: Verdict) {
    println!();
    let n = plural(changes(answers), "route", "routes");
    match verdict {
        Verdict::Converged => println!("applied: {n} changed"),
        Verdict::Pending => println!("applied in part: {n} changed, work left (see above)"),
        Verdict::Failed => println!("failed: {n} changed before or beside the errors above"),
    }
}
