//! Namespaces: new ones are private, existing ones can be joined by path; sysctls apply in
//! the container's own namespaces.

use harun_integration::netns;
use harun_integration::procs::parse_kv;
use harun_integration::{harun, Harun};

fn interfaces(proc_net_dev: &str) -> Vec<String> {
    // Interface lines are `  name: counters...`; the two header lines have no colon.
    proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
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

/// `ip netns add` a namespace with a veth pair in it (in a private mount namespace around
/// harun, see `netns`), join it by its /var/run/netns path: the container sees the pair.
#[test]
fn joining_a_network_namespace_by_path_shows_its_interfaces() {
    let h = harun!();
    let name = format!("harun-{}", h.tag());
    let wrapper = netns::private_netns_wrapper(
        &name,
        &[
            &[
                "link", "add", "hveth0", "type", "veth", "peer", "name", "hveth1",
            ],
            &["link", "set", "lo", "up"],
        ],
    );
    let mut b = h.bundle();
    b.namespace_path("network", netns::path(&name))
        .sh("cat /proc/net/dev; echo container-inode=$(stat -L -c %i /proc/self/ns/net)");
    let id = h.id("joinnet");
    h.remember_id(&id);
    let out = h
        .cmd(["run", "--bundle"])
        .arg(b.dir())
        .arg(&id)
        .wrap(wrapper)
        .run()
        .ok();
    let mut seen = interfaces(&out.stdout);
    seen.sort();
    assert_eq!(seen, ["hveth0", "hveth1", "lo"], "{out}");
    let kv = parse_kv(&out.stdout);
    assert_eq!(
        kv["container-inode"],
        kv["netns-inode"],
        "not the netns at {}",
        netns::path(&name)
    );
    h.assert_clean();
}
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
    b.set(&format!("/linux/sysctl/{key}"), value)
        .args(&["cat", &path]);
    h.run_ok(&b).trim().to_string()
}

#[test]
fn sysctls_are_applied_in_the_containers_namespaces() {
    let h = harun!();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_eq!(sysctl_in_container(&h, "net.ipv4.ip_forward", "1"), "1");
    assert_eq!(
        sysctl_in_container(&h, "kernel.shmmax", "123456789"),
        "123456789"
    );
    assert_eq!(sysctl_in_container(&h, "kernel.msgmax", "4096"), "4096");
    assert_eq!(sysctl_in_container(&h, "fs.mqueue.msg_max", "17"), "17");
    // The host keeps its own values.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
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
        assert_ne!(
            kv[n],
            host.to_string_lossy(),
            "the container shares the host's {n} namespace"
        );
    }
    // In its own cgroup namespace the container's cgroup is the root.
    assert!(kv["cg"].split_whitespace().any(|w| w == "0::/"), "{kv:?}");
    h.assert_clean();
}

#[test]
fn without_a_namespace_entry_the_hosts_is_shared() {
    let h = harun!();
    let mut b = h.bundle();
    b.without_namespace("network")
        .remove("/linux/sysctl")
        .args(&["readlink", "/proc/self/ns/net"]);
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(h.run_ok(&b).trim(), host.to_string_lossy());
    h.assert_clean();
}

/// A new user namespace with the configured mappings: root inside is 100000 outside.
#[test]
fn user_namespace_with_mappings() {
    let h = harun!();
    let mut b = h.bundle();
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.namespace("user")
        .set("/linux/uidMappings", map.clone())
        .set("/linux/gidMappings", map)
        .sh("echo uid_map=$(cat /proc/self/uid_map); echo gid_map=$(cat /proc/self/gid_map); echo id=$(id -u):$(id -g)");
    let kv = parse_kv(&h.run_ok(&b));
    assert_eq!(kv["uid_map"], "0 100000 65536");
    assert_eq!(kv["gid_map"], "0 100000 65536");
    assert_eq!(kv["id"], "0:0");
    h.assert_clean();
}

/// A new time namespace with a boottime offset: the container's uptime includes it.
#[test]
fn time_namespace_with_a_boottime_offset() {
    let h = harun!();
    let mut b = h.bundle();
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    b.namespace("time")
        .set(
            "/linux/timeOffsets",
            serde_json::json!({"boottime": {"secs": 1_000_000}}),
        )
        .args(&["cat", "/proc/uptime"]);
    let out = h.run_ok(&b);
    let inside: f64 = out.split(' ').next().unwrap().parse().unwrap();
    assert!(
        inside >= host_uptime + 1_000_000.0,
        "uptime inside {inside}, host {host_uptime}"
    );
    assert!(
        inside < host_uptime + 1_000_000.0 + 120.0,
        "uptime inside {inside}, host {host_uptime}"
    );
    h.assert_clean();
}
