//! Namespaces: new ones are private, existing ones can be joined by path; sysctls apply in
//! the container's own namespaces.

use harun_integration::netns::NetNs;
use harun_integration::procs::parse_kv;
use harun_integration::{harun, Harun};

fn interfaces(proc_net_dev: &str) -> Vec<String> {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn a_new_network_namespace_has_only_loopback() {
    let h = harun!();
    let mut b = h.bundle();
    b.args(&["cat", "/proc/net/dev"]);
    assert_eq!(interfaces(&h.run_ok(&b)), ["lo"]);
    h.assert_clean();
}

#[test]
fn joining_a_network_namespace_by_path_shows_its_interfaces() {
    let h = harun!();
    let ns = NetNs::add(&format!("harun-{}", h.tag()));
    ns.ip(&["link", "add", "hdummy0", "type", "dummy"]);
    ns.ip(&["link", "set", "lo", "up"]);
    let mut b = h.bundle();
    b.namespace_path("network", ns.path()).args(&["cat", "/proc/net/dev"]);
    let mut seen = interfaces(&h.run_ok(&b));
    seen.sort();
    assert_eq!(seen, ["hdummy0", "lo"]);

    b.args(&["sh", "-c", "echo inode=$(stat -L -c %i /proc/self/ns/net)"]);
    let inode = parse_kv(&h.run_ok(&b))["inode"].clone();
    let want = std::fs::metadata(ns.path()).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    assert_eq!(inode, want.to_string(), "the container's netns is not the one at {:?}", ns.path());
    h.assert_clean();
}

/// A second container joins the uts and ipc namespaces of a first one through
/// /proc/PID/ns/*: it sees the first one's hostname and SysV shared memory limit.
#[test]
fn joining_uts_and_ipc_namespaces_of_another_container() {
    let h = harun!();
    let mut first = h.bundle();
    first
        .set("/hostname", "first-box")
        .set("/linux/sysctl/kernel.shmmax", "987654321")
        .args(&["sleep", "600"]);
    let a = h.id("first");
    h.create(&a, &first).ok();
    let pid = h.state_of(&a).pid;

    let mut second = h.bundle();
    second
        .remove("/hostname")
        .namespace_path("uts", format!("/proc/{pid}/ns/uts"))
        .namespace_path("ipc", format!("/proc/{pid}/ns/ipc"))
        .sh("echo host=$(hostname); echo shmmax=$(cat /proc/sys/kernel/shmmax)");
    let kv = parse_kv(&h.run_ok(&second));
    assert_eq!(kv["host"], "first-box");
    assert_eq!(kv["shmmax"], "987654321");

    h.delete_force(&a).ok();
    h.assert_clean();
}

fn sysctl_in_container(h: &Harun, key: &str, value: &str) -> String {
    let mut b = h.bundle();
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    b.set(&format!("/linux/sysctl/{key}"), value).args(&["cat", &path]);
    h.run_ok(&b).trim().to_string()
}

#[test]
fn sysctls_are_applied_in_the_containers_namespaces() {
    let h = harun!();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_eq!(sysctl_in_container(&h, "net.ipv4.ip_forward", "1"), "1");
    assert_eq!(sysctl_in_container(&h, "kernel.shmmax", "123456789"), "123456789");
    assert_eq!(sysctl_in_container(&h, "kernel.msgmax", "4096"), "4096");
    assert_eq!(sysctl_in_container(&h, "fs.mqueue.msg_max", "17"), "17");
    // The host keeps its own values.
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host_forward);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(), host_shmmax);
    h.assert_clean();
}

#[test]
fn namespaces_differ_from_the_hosts() {
    let h = harun!();
    let mut b = h.bundle();
    b.sh("for n in pid mnt uts ipc net cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; echo cg=$(cat /proc/self/cgroup)");
    let kv = parse_kv(&h.run_ok(&b));
    for n in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(kv[n], host.to_string_lossy(), "the container shares the host's {n} namespace");
    }
    // In its own cgroup namespace the container's cgroup is the root.
    assert!(kv["cg"].split_whitespace().any(|w| w == "0::/"), "{kv:?}");
    h.assert_clean();
}

#[test]
fn without_a_namespace_entry_the_hosts_is_shared() {
    let h = harun!();
    let mut b = h.bundle();
    b.without_namespace("network").remove("/linux/sysctl").args(&["readlink", "/proc/self/ns/net"]);
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(h.run_ok(&b).trim(), host.to_string_lossy());
    h.assert_clean();
}
