//! `/etc/passwd` and `/etc/group` lookups, for `exec --user NAME[:GROUP]` (the container's
//! files) and `list`'s OWNER column (the host's). Pure: the caller reads the file.
//!
//! Format (passwd(5), group(5)): one entry per line, `:`-separated; passwd
//! `name:password:uid:gid:gecos:home:shell`, group `name:password:gid:members`. Lines that
//! do not parse are skipped, as libc does.

/// (uid, gid) of the user `name`.
pub fn user_by_name(passwd: &str, name: &str) -> Option<(u32, u32)> {
    entries(passwd).find_map(|f| {
        (f.first() == Some(&name))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

/// The name of the user with `uid` (the first entry, as getpwuid).
pub fn name_by_uid(passwd: &str, uid: u32) -> Option<&str> {
    entries(passwd).find_map(|f| {
        let id: u32 = f.get(2)?.parse().ok()?;
        (id == uid).then_some(f[0])
    })
}

/// The gid of the group `name`.
pub fn group_by_name(group: &str, name: &str) -> Option<u32> {
    entries(group).find_map(|f| (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?)
}

/// The fields of each entry; comments and blank lines skipped.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3 && !f[0].is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # a comment\n\
                          \n\
                          broken line\n\
                          daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                          www-data:x:33:33::/var/www:/bin/false\n\
                          bad:x:notanumber:1::/:/bin/sh\n\
                          alias:x:33:50::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,daemon\nstaff:x:50\n";

    #[test]
    fn users_and_groups() {
        assert_eq!(user_by_name(PASSWD, "www-data"), Some((33, 33)));
        assert_eq!(user_by_name(PASSWD, "root"), Some((0, 0)));
        assert_eq!(user_by_name(PASSWD, "bad"), None);
        assert_eq!(user_by_name(PASSWD, "nobody"), None);
        assert_eq!(user_by_name(PASSWD, ""), None);
        assert_eq!(name_by_uid(PASSWD, 33), Some("www-data"));
        assert_eq!(name_by_uid(PASSWD, 1), Some("daemon"));
        assert_eq!(name_by_uid(PASSWD, 7), None);
        assert_eq!(group_by_name(GROUP, "wheel"), Some(10));
        assert_eq!(group_by_name(GROUP, "staff"), Some(50));
        assert_eq!(group_by_name(GROUP, "nogroup"), None);
    }
}
