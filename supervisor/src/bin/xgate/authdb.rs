//! `xgate auth-db DATABASE COMMAND ...`: xpra's sqlite tool (`python3 -m xpra.auth.sqlite`), same
//! commands, arguments and output, on a sqlite file or a PostgreSQL database.
//!
//! ```text
//! xgate auth-db ./xpra-auth.sdb create
//! xgate auth-db ./xpra-auth.sdb add alice secret [uid gid displays env_options session_options]
//! xgate auth-db ./xpra-auth.sdb remove alice [password]
//! xgate auth-db ./xpra-auth.sdb list
//! xgate auth-db ./xpra-auth.sdb authenticate alice secret
//! xgate auth-db postgresql://xgate:pw@db.example/xgate create
//! ```

use xgate_actors::auth::sql::{Access, DbLocation, UserDb, UserRow};
use xgate_actors::users;

/// How a command failed: the message and the exit status (1, as xpra's tool).
pub(crate) type Failure = String;

fn usage(msg: &str, db: &str) -> Failure {
    format!(
        "{msg}\nusage:\n xgate auth-db {db} create\n xgate auth-db {db} list\n xgate auth-db {db} add username password [uid, gid, displays, env_options, session_options]\n xgate auth-db {db} remove username [password]\n xgate auth-db {db} authenticate username password"
    )
}

/// Runs one command; what it prints goes to stdout, errors come back.
pub(crate) fn run(database: &str, args: &[String]) -> Result<(), Failure> {
    let Some(command) = args.first() else {
        return Err(usage("invalid number of arguments", database));
    };
    let rest = &args[1..];
    let location = DbLocation::parse(database).map_err(|e| e.to_string())?;
    let open = |access| UserDb::open(location.clone(), access);
    match command.as_str() {
        "create" => {
            if !rest.is_empty() {
                return Err(usage("invalid number of arguments", database));
            }
            open(Access::Create).create().map_err(|e| e.to_string())
        }
        "add" => {
            if !(2..=7).contains(&rest.len()) {
                return Err(usage("invalid number of arguments", database));
            }
            let arg = |i: usize| rest.get(i).cloned();
            let row = UserRow {
                username: rest[0].clone(),
                password: arg(1),
                // xpra's tool: the caller's uid and gid unless given, empty strings for the rest.
                uid: Some(arg(2).unwrap_or_else(|| users::own_uid().to_string())),
                gid: Some(arg(3).unwrap_or_else(|| users::own_gid().to_string())),
                displays: Some(arg(4).unwrap_or_default()),
                env_options: Some(arg(5).unwrap_or_default()),
                session_options: Some(arg(6).unwrap_or_default()),
            };
            open(Access::Write).add(&row).map_err(|e| e.to_string())
        }
        "remove" => {
            if !(1..=2).contains(&rest.len()) {
                return Err(usage("invalid number of arguments", database));
            }
            let password = rest.get(1).map(String::as_str).filter(|p| !p.is_empty());
            open(Access::Write)
                .remove(&rest[0], password)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "list" => {
            if !rest.is_empty() {
                return Err(usage("invalid number of arguments", database));
            }
            let rows = open(Access::Read).list().map_err(|e| e.to_string())?;
            print!("{}", format_rows(&rows));
            Ok(())
        }
        "authenticate" => {
            if rest.len() != 2 {
                return Err(usage("invalid number of arguments", database));
            }
            match open(Access::Read)
                .authenticate(&rest[0], &rest[1])
                .map_err(|e| e.to_string())?
            {
                Some(row) => {
                    println!(
                        "authentication success for '{}': displays {}",
                        row.username,
                        row.displays.unwrap_or_default()
                    );
                    Ok(())
                }
                None => Err(format!("authentication failed for '{}'", rest[0])),
            }
        }
        other => Err(usage(&format!("invalid command '{other}'"), database)),
    }
}

/// xpra's `list` output: a count, then a table with right-aligned cells (`None` for NULL).
fn format_rows(rows: &[UserRow]) -> String {
    if rows.is_empty() {
        return "no rows found\n".into();
    }
    let fields = [
        "username",
        "password",
        "uid",
        "gid",
        "displays",
        "env_options",
        "session_options",
    ];
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.username.clone(),
                text(&r.password),
                text(&r.uid),
                text(&r.gid),
                text(&r.displays),
                text(&r.env_options),
                text(&r.session_options),
            ]
        })
        .collect();
    let mut sizes: Vec<usize> = fields.iter().map(|f| f.len() + 1).collect();
    for row in &cells {
        for (i, v) in row.iter().enumerate() {
            sizes[i] = sizes[i].max(v.chars().count() + 1);
        }
    }
    let line = |values: &[String]| {
        let mut s = String::from("|");
        for (i, v) in values.iter().enumerate() {
            s.push_str(&format!("{v:>width$}|", width = sizes[i]));
        }
        s
    };
    let total = sizes.iter().sum::<usize>() + fields.len() + 1;
    let mut out = format!("{} rows found:\n", rows.len());
    out.push_str(&"-".repeat(total));
    out.push('\n');
    let header: Vec<String> = fields.iter().map(|f| f.replace('_', " ")).collect();
    out.push_str(&line(&header));
    out.push('\n');
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_looks_like_xpras() {
        let rows = [UserRow {
            username: "alice".into(),
            password: Some("secret".into()),
            uid: Some("1000".into()),
            gid: Some("1000".into()),
            displays: Some(":100".into()),
            env_options: Some(String::new()),
            session_options: None,
        }];
        let out = format_rows(&rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "1 rows found:");
        assert_eq!(
            lines[2],
            "| username| password|  uid|  gid| displays| env options| session options|"
        );
        assert_eq!(
            lines[4],
            "|    alice|   secret| 1000| 1000|     :100|            |            None|"
        );
        assert_eq!(format_rows(&[]), "no rows found\n");
    }

    #[test]
    fn commands_round_trip_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("xgate-authdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("a.sdb").display().to_string();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        run(&db, &s(&["create"])).expect("create");
        assert!(run(&db, &s(&["create"])).is_err());
        run(
            &db,
            &s(&[
                "add",
                "alice",
                "pw",
                "1000",
                "1000",
                ":100,:101",
                "A=1",
                "compression=0",
            ]),
        )
        .expect("add");
        run(&db, &s(&["add", "bob", "pw2"])).expect("add");
        run(&db, &s(&["authenticate", "alice", "pw"])).expect("authenticate");
        assert!(run(&db, &s(&["authenticate", "alice", "nope"])).is_err());
        run(&db, &s(&["remove", "alice"])).expect("remove");
        assert!(run(&db, &s(&["authenticate", "alice", "pw"])).is_err());
        run(&db, &s(&["list"])).expect("list");
        assert!(run(&db, &s(&["add", "x"])).is_err());
        assert!(run(&db, &s(&["frobnicate"])).is_err());
        assert!(run(&db, &[]).is_err());
        let missing = dir.join("missing.sdb").display().to_string();
        assert!(run(&missing, &s(&["add", "a", "b"])).is_err());
        assert!(!dir.join("missing.sdb").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
