//! An OCI bundle on disk: a busybox rootfs and a config.json that tests edit freely.
//!
//! The config starts as `harun spec`'s (runc's default) with `process.terminal` false. Every
//! edit is written to config.json at once, so the file on disk is always what the test sees.
//! Edits address the JSON by pointer (RFC 6901, missing objects are created), which keeps
//! tests short and lets them write values oci-spec would refuse (bad-input tests).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::rootfs::make_busybox_rootfs;

#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    config: Value,
}

impl Bundle {
    /// Makes `dir` (it may exist, empty) with rootfs/ and config.json.
    pub fn create(dir: &Path) -> io::Result<Bundle> {
        fs::create_dir_all(dir)?;
        make_busybox_rootfs(&dir.join("rootfs"))?;
        let spec = harun_runtime::spec::example().map_err(io::Error::other)?;
        let mut config = serde_json::to_value(&spec).map_err(io::Error::other)?;
        config["process"]["terminal"] = json!(false);
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            config,
        };
        bundle.try_save()?;
        Ok(bundle)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The config as last written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The value at `pointer`, if any.
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.config.pointer(pointer)
    }

    /// Arbitrary edit of the config JSON.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save()
    }

    /// Sets the value at `pointer` (e.g. `/process/user/uid`, `/linux/sysctl/kernel.shmmax`),
    /// creating missing objects on the way; `-` as the last token appends to an array.
    pub fn set(&mut self, pointer: &str, value: impl Into<Value>) -> &mut Self {
        *slot(&mut self.config, pointer) = value.into();
        self.save()
    }

    /// Appends to the array at `pointer` (created if missing).
    pub fn push(&mut self, pointer: &str, value: impl Into<Value>) -> &mut Self {
        let arr = slot(&mut self.config, pointer);
        if !arr.is_array() {
            *arr = json!([]);
        }
        if let Value::Array(a) = arr {
            a.push(value.into());
        }
        self.save()
    }

    /// Removes the value at `pointer` (no-op if absent).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, last) = split_last(pointer);
        if let Some(p) = self.config.pointer_mut(&parent) {
            match p {
                Value::Object(m) => {
                    m.remove(&last);
                }
                Value::Array(a) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
        self.save()
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Appends `KEY=VALUE` to `process.env`.
    pub fn env(&mut self, entry: &str) -> &mut Self {
        self.push("/process/env", entry)
    }

    /// Appends a mount.
    pub fn mount(
        &mut self,
        destination: &str,
        typ: &str,
        source: &str,
        options: &[&str],
    ) -> &mut Self {
        self.push(
            "/mounts",
            json!({"destination": destination, "type": typ, "source": source, "options": options}),
        )
    }

    /// Adds a new namespace of type `typ` (replacing an entry of that type).
    pub fn namespace(&mut self, typ: &str) -> &mut Self {
        self.without_namespace(typ)
            .push("/linux/namespaces", json!({ "type": typ }))
    }

    /// Joins the namespace at `path` for type `typ` (replacing an entry of that type).
    pub fn namespace_path(&mut self, typ: &str, path: impl AsRef<Path>) -> &mut Self {
        let path = path.as_ref().to_string_lossy().into_owned();
        self.without_namespace(typ)
            .push("/linux/namespaces", json!({ "type": typ, "path": path }))
    }

    /// Drops the namespace entry of type `typ`.
    pub fn without_namespace(&mut self, typ: &str) -> &mut Self {
        self.edit(|c| {
            if let Some(Value::Array(ns)) = c.pointer_mut("/linux/namespaces") {
                ns.retain(|n| n["type"] != typ);
            }
        })
    }

    /// Appends a hook to `hooks.<stage>` (`args` includes argv\[0\], as in the spec).
    pub fn hook(&mut self, stage: &str, path: &str, args: &[&str]) -> &mut Self {
        self.push(
            &format!("/hooks/{stage}"),
            json!({ "path": path, "args": args }),
        )
    }

    /// Writes a file inside the rootfs (parents created).
    pub fn write_file(&mut self, rel: &str, contents: &str) -> &mut Self {
        let path = self.rootfs().join(rel.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Replaces config.json with `text` verbatim (broken configs for bad-input tests).
    /// Later edits rewrite it from the JSON value.
    pub fn write_raw_config(&self, text: &str) {
        fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Deletes config.json.
    pub fn remove_config(&self) {
        fs::remove_file(self.config_path()).expect("remove config.json");
    }

    fn save(&mut self) -> &mut Self {
        self.try_save().expect("write config.json");
        self
    }

    fn try_save(&self) -> io::Result<()> {
        let text = serde_json::to_string_pretty(&self.config).map_err(io::Error::other)?;
        fs::write(self.config_path(), text)
    }
}

fn split_last(pointer: &str) -> (String, String) {
    match pointer.rsplit_once('/') {
        Some((parent, last)) => (parent.to_string(), unescape(last)),
        None => (String::new(), unescape(pointer)),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The slot at `pointer`, creating objects (and array elements at index == len or `-`).
/// Panics when the pointer crosses a scalar: that is a bug in the test.
fn slot<'a>(root: &'a mut Value, pointer: &str) -> &'a mut Value {
    let mut cur = root;
    for token in pointer.split('/').skip(1).map(unescape) {
        if cur.is_null() {
            *cur = json!({});
        }
        cur = match cur {
            Value::Object(m) => m.entry(token).or_insert(Value::Null),
            Value::Array(a) => {
                let i = if token == "-" {
                    a.len()
                } else {
                    token.parse().expect("array index")
                };
                if i == a.len() {
                    a.push(Value::Null);
                }
                &mut a[i]
            }
            other => panic!("JSON pointer {pointer} crosses a scalar: {other}"),
        };
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_slots_create_objects_and_append() {
        let mut v = json!({"a": {"list": [1]}});
        *slot(&mut v, "/a/b/c") = json!(1);
        *slot(&mut v, "/a/list/-") = json!(2);
        *slot(&mut v, "/a/list/0") = json!(0);
        *slot(&mut v, "/linux/sysctl/net.ipv4.ip_forward") = json!("1");
        *slot(&mut v, "/x~1y") = json!(true);
        assert_eq!(
            v,
            json!({"a": {"b": {"c": 1}, "list": [0, 2]},
                   "linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}, "x/y": true})
        );
    }
}
