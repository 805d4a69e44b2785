//! `run` and friends as runc and Docker users type them: a command after `--`, `-e`, `-t`,
//! `-i`, `--rm`, `run -d` printing the ID, `exec -u NAME`, several IDs for `stop` and
//! `delete`, and `create` checking the `run.harun.*` annotations as `run` does.

mod supervisor_util;

use std::fs;
use std::os::unix::fs::symlink;

use harun_integration::{harun, Harun, Out};

fn error_line(out: Out) -> String {
    out.error(&[]).stderr.trim_end().to_string()
}

fn run_args(h: &Harun, b: &harun_integration::Bundle, id: &str, flags: &[&str]) -> Out {
    h.remember_id(id);
    h.cmd(["run"])
        .args(flags.iter().copied())
        .arg("--bundle")
        .arg(b.dir())
        .arg(id)
        .run()
}

#[test]
fn a_command_after_the_double_dash_replaces_process_args() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("echo from-the-bundle");
    let id = h.id("args");
    let out = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .args(["--", "sh", "-c", "echo \"$0 $1\" -e", "a", "--rm"])
        .run()
        .ok();
    assert_eq!(out.stdout, "a --rm -e\n");
    // The bundle-directory form too, and the bundle's own args are left alone.
    let out = h
        .cmd(["run", "--name", &h.id("args2")])
        .arg(b.dir())
        .args(["--", "echo", "replaced"])
        .run()
        .ok();
    assert_eq!(out.stdout, "replaced\n");
    assert_eq!(
        run_args(&h, &b, &h.id("args3"), &[]).ok().stdout,
        "from-the-bundle\n"
    );
    h.assert_clean();
}

#[test]
fn env_flags_add_or_replace_variables() {
    let h = harun!();
    let mut b = h.bundle();
    b.env("KEEP=bundle").env("REPLACED=bundle");
    b.sh("echo $KEEP $REPLACED $ADDED $FROM_HOST $UNSET_ON_HOST.");
    let id = h.id("env");
    h.remember_id(&id);
    let out = h
        .cmd([
            "run",
            "-e",
            "REPLACED=flag",
            "--env",
            "ADDED=1",
            "-e",
            "FROM_HOST",
        ])
        .args(["-e", "UNSET_ON_HOST_XYZ", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .wrap(["env", "FROM_HOST=host-value"])
        .run()
        .ok();
    assert_eq!(out.stdout, "bundle flag 1 host-value .\n");
    assert_eq!(
        error_line(run_args(&h, &b, &id, &["-e", "=x"])),
        "harun: --env `=x`: expected KEY=VALUE or KEY"
    );
    h.assert_clean();
}

#[test]
fn tty_gives_the_process_a_terminal_and_i_and_rm_are_accepted() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["true"]);
    let id = h.id("tty");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "-t", "-i", "--rm", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .args(["--", "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty"])
        .run()
        .ok();
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("stdin-is-a-tty"), "{out}");
    let out = run_args(&h, &b, &id, &["-i"]).ok();
    assert_eq!(out.stdout, "");
    // A supervised container has no terminal.
    assert_eq!(
        error_line(run_args(&h, &b, &id, &["-t", "--restart", "always"])),
        "harun: restart policy `always`: a supervised container cannot have a terminal \
         (process.terminal, --tty, --console-socket)"
    );
    h.assert_clean();
}

#[test]
fn run_detach_prints_the_id() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    let id = h.id("detached");
    let out = run_args(&h, &b, &id, &["-d"]).ok();
    assert_eq!(out.stdout, format!("{id}\n"));
    h.state(&id);
    h.delete_force(&id).ok();
    // The ID harun makes from a bundle directory's name is the one to use next.
    let dir = h.dir().join(format!("my bundle-{}", h.tag()));
    let named = h.bundle_at(&dir);
    let mut named = named;
    named.args(&["sleep", "600"]);
    let out = h.cmd(["run", "-d"]).arg(named.dir()).run().ok();
    let made = out.stdout.trim_end().to_string();
    assert_eq!(made, format!("my-bundle-{}", h.tag()));
    h.remember_id(&made);
    h.state(&made);
    h.delete_force(&made).ok();
    // Supervised, the same.
    let sup = h.id("supervised");
    let out = supervisor_util::run_detached(&h, &sup, &b, &["--restart", "always"]);
    assert_eq!(out.stdout, format!("{sup}\n"));
    h.delete_force(&sup).ok();
    h.assert_clean();
}

#[test]
fn exec_user_takes_names_from_the_containers_files() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["sleep", "600"]);
    b.write_file(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n",
    );
    b.write_file("etc/group", "root:x:0:\napp:x:2345:\nstaff:x:50:app\n");
    let id = h.id("users");
    h.create(&id, &b).ok();
    h.start(&id).ok();
    let ids = |user: &str| {
        h.exec(&[
            "exec",
            "-u",
            user,
            &id,
            "sh",
            "-c",
            "echo $(id -u):$(id -g)",
        ])
        .ok()
        .stdout
    };
    assert_eq!(ids("app"), "1234:2345\n");
    assert_eq!(ids("app:staff"), "1234:50\n");
    assert_eq!(ids("app:0"), "1234:0\n");
    assert_eq!(ids("77:staff"), "77:50\n");
    assert_eq!(ids("77"), "77:0\n");
    assert_eq!(
        error_line(h.exec(&["exec", "-u", "nobody", &id, "true"])),
        "harun: --user `nobody`: no user `nobody` in the container's /etc/passwd"
    );
    assert_eq!(
        error_line(h.exec(&["exec", "--user", "app:wheel", &id, "true"])),
        "harun: --user `app:wheel`: no group `wheel` in the container's /etc/group"
    );
    assert_eq!(
        error_line(h.exec(&["exec", "-u", "app:", &id, "true"])),
        "harun: --user `app:`: expected USER, USER:GROUP (names or numbers)"
    );
    h.delete_force(&id).ok();

    // /etc/passwd is read inside the container: an absolute symlink leading up and out
    // lands on the container's own /etc/shadow (missing here), never the host's.
    let mut s = h.bundle();
    s.args(&["sleep", "600"]);
    fs::remove_file(s.rootfs().join("etc/passwd")).unwrap();
    symlink(
        "/../../../../../../etc/shadow",
        s.rootfs().join("etc/passwd"),
    )
    .unwrap();
    let id = h.id("symlink");
    h.create(&id, &s).ok();
    assert_eq!(
        error_line(h.exec(&["exec", "-u", "root", &id, "true"])),
        format!("harun: read `/etc/passwd` in container `{id}`: ENOENT: No such file or directory")
    );
    h.delete_force(&id).ok();
    h.assert_clean();
}

#[test]
fn stop_and_delete_take_several_ids_and_go_on_past_a_failure() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("trap 'exit 0' TERM; while :; do sleep 0.1; done");
    let (one, two) = (h.id("one"), h.id("two"));
    for id in [&one, &two] {
        h.create(id, &b).ok();
        h.start(id).ok();
    }
    let out = h.exec(&["stop", "-t", "10", &one, "nope", &two]);
    assert_eq!(
        out.stdout,
        format!("{one}: stopped\n{two}: stopped\n"),
        "{out}"
    );
    assert_eq!(error_line(out), "harun: container `nope` does not exist");
    assert_eq!(h.state_of(&one).status, "stopped");
    assert_eq!(h.state_of(&two).status, "stopped");
    let out = h.exec(&["delete", &one, "nope", &two]);
    assert_eq!(error_line(out), "harun: container `nope` does not exist");
    assert!(!h.root().join(&one).exists() && !h.root().join(&two).exists());
    // With --force an unknown ID is no error, and a running one goes too.
    let three = h.id("three");
    h.create(&three, &b).ok();
    h.exec(&["delete", "-f", "nope", &three]).ok();
    assert!(!h.root().join(&three).exists());
    h.assert_clean();
}

#[test]
fn create_checks_the_supervision_annotations_as_run_does() {
    let h = harun!();
    let id = h.id("annot");
    h.remember_id(&id);
    let cases = [
        (
            "run.harun.restrat",
            "always",
            "harun: annotation `run.harun.restrat`: unknown supervision annotation (did you \
             mean `run.harun.restart`?)",
        ),
        (
            "run.harun.restart.delay",
            "10x",
            "harun: annotation `run.harun.restart.delay`: invalid duration `10x`: unknown \
             unit `x` (use ms, s, m, h)",
        ),
    ];
    for (key, value, want) in cases {
        let mut b = h.bundle();
        b.args(&["true"]).set(&format!("/annotations/{key}"), value);
        for cmd in ["create", "run"] {
            let out = h.cmd([cmd, "--bundle"]).arg(b.dir()).arg(&id).run();
            assert_eq!(error_line(out), want, "{cmd} {key}");
            assert!(!h.root().join(&id).exists());
        }
    }
    // Well-formed supervision annotations do not stop a plain create.
    let mut b = h.bundle();
    b.args(&["true"])
        .set("/annotations/run.harun.restart", "always");
    h.create(&id, &b).ok();
    h.delete_force(&id).ok();
    h.assert_clean();
}
