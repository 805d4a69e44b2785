//! process.terminal with --console-socket: the caller receives the pty master over the
//! socket (SCM_RIGHTS) and drives the container's shell through it.

use std::time::Duration;

use harun_integration::console::{read_until, write_all, ConsoleSocket};
use harun_integration::{harun, Bundle, Harun};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

fn terminal_bundle(h: &Harun) -> Bundle {
    let mut b = h.bundle();
    b.set("/process/terminal", true)
        .set("/process/consoleSize", json!({"height": 30, "width": 100}))
        .args(&["sh"]);
    b
}

#[test]
fn run_with_a_console_socket_drives_a_shell() {
    let h = harun!();
    let b = terminal_bundle(&h);
    let sock = ConsoleSocket::bind(&h.path("console.sock"));
    let id = h.id("tty");
    h.remember_id(&id);
    let run = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg("--console-socket")
        .arg(sock.path())
        .arg(&id)
        .spawn();
    let master = match sock.receive_master(T) {
        Ok(fd) => fd,
        Err(e) => panic!("{e}\n{}", run.wait()),
    };
    write_all(&master, "stty size; tty; echo hello-$((1+2)); exit 7\n").unwrap();
    let seen = read_until(&master, "hello-3", T).unwrap();
    assert!(seen.contains("30 100"), "consoleSize not applied: {seen:?}");
    assert!(
        seen.contains("/dev/pts/0"),
        "stdin is not the pty: {seen:?}"
    );
    let out = run.wait().exit(7);
    assert_eq!(out.stdout, "", "output went around the terminal");
    h.assert_clean();
}

#[test]
fn create_and_start_with_a_console_socket() {
    let h = harun!();
    let b = terminal_bundle(&h);
    let sock = ConsoleSocket::bind(&h.path("console.sock"));
    let id = h.id("ttycs");
    h.remember_id(&id);
    let create = h
        .cmd(["create", "--bundle"])
        .arg(b.dir())
        .arg("--console-socket")
        .arg(sock.path())
        .arg(&id)
        .spawn();
    let master = match sock.receive_master(T) {
        Ok(fd) => fd,
        Err(e) => panic!("{e}\n{}", create.wait()),
    };
    create.wait().ok();
    assert_eq!(h.state_of(&id).status, "created");
    h.start(&id).ok();
    write_all(&master, "echo hello-$((1+2)); exit 7\n").unwrap();
    read_until(&master, "hello-3", T).unwrap();
    let st = h.wait_status(&id, "stopped");
    assert_eq!(st.id, id);
    h.delete(&id).ok();
    h.assert_clean();
}

/// terminal=true without a console socket, and a socket without terminal=true, are errors.
#[test]
fn terminal_and_console_socket_go_together() {
    let h = harun!();
    let b = terminal_bundle(&h);
    h.create(&h.id("nosock"), &b).error(&["console"]);
    let mut plain = h.bundle();
    plain.args(&["true"]);
    let sock = ConsoleSocket::bind(&h.path("console.sock"));
    let id = h.id("noterm");
    h.remember_id(&id);
    h.cmd(["create", "--bundle"])
        .arg(plain.dir())
        .arg("--console-socket")
        .arg(sock.path())
        .arg(&id)
        .run()
        .error(&["terminal"]);
    h.assert_clean();
}
