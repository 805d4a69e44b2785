//! A busybox image made locally (no registry is reachable): the test rootfs as one
//! uncompressed, reproducible layer (sorted entries, mtime 0), written both as an OCI image
//! layout archive (`ctr images import`, `podman load`) and as a docker-archive.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::make_busybox_rootfs;

/// The archives of one image.
#[derive(Debug, Clone)]
pub struct Image {
    /// Full reference, e.g. `docker.io/library/busybox:local`.
    pub name: String,
    pub oci_archive: PathBuf,
    pub docker_archive: PathBuf,
}

/// What goes into the image's config.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Full reference (the docker-archive gets the same name with tag `docker`).
    pub name: &'a str,
    pub cmd: &'a [&'a str],
    /// `K=V` entries besides PATH.
    pub env: &'a [String],
}

/// Builds the busybox rootfs under `dir` and writes both archives there.
pub fn build(dir: &Path, spec: &Spec<'_>) -> Result<Image, String> {
    let slug: String = spec
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let rootfs = dir.join(format!("{slug}-rootfs"));
    make_busybox_rootfs(&rootfs).map_err(|e| format!("busybox rootfs: {e}"))?;
    let layer = layer_tar(&rootfs).map_err(|e| format!("tar {}: {e}", rootfs.display()))?;
    let _ = fs::remove_dir_all(&rootfs);
    let config = config_json(spec, &sha256(&layer));
    let image = Image {
        name: spec.name.to_string(),
        oci_archive: dir.join(format!("{slug}.oci.tar")),
        docker_archive: dir.join(format!("{slug}.docker.tar")),
    };
    write_oci(&image.oci_archive, spec.name, &layer, &config)?;
    write_docker(
        &image.docker_archive,
        &docker_name(spec.name),
        &layer,
        &config,
    )?;
    Ok(image)
}

/// The docker-archive's image name for `name` (tag `docker`).
pub fn docker_name(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((repo, _)) => format!("{repo}:docker"),
        None => format!("{name}:docker"),
    }
}

fn sha256(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn config_json(spec: &Spec<'_>, layer_digest: &str) -> Vec<u8> {
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    env.extend(spec.env.iter().cloned());
    json!({
        "architecture": goarch(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": env, "Cmd": spec.cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "harun client suite"}]
    })
    .to_string()
    .into_bytes()
}

/// The rootfs as a tar: entries in sorted order, owners and modes as on disk, mtime 0.
fn layer_tar(rootfs: &Path) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    add_tree(&mut b, rootfs, Path::new(""))?;
    b.into_inner()
}

fn add_tree(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = rel.join(e.file_name());
        let meta = fs::symlink_metadata(e.path())?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_mtime(0);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &path, io::empty())?;
            add_tree(b, root, &path)?;
        } else if ft.is_symlink() {
            h.set_size(0);
            b.append_link(&mut h, &path, fs::read_link(e.path())?)?;
        } else if ft.is_file() {
            b.append_data(&mut h, &path, fs::File::open(e.path())?)?;
        }
    }
    Ok(())
}

/// An archive of named in-memory files.
fn write_tar(path: &Path, files: &[(String, &[u8])]) -> Result<(), String> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data)
            .map_err(|e| format!("tar {name}: {e}"))?;
    }
    let bytes = b.into_inner().map_err(|e| format!("tar: {e}"))?;
    fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|e| format!("write {}: {e}", path.display()))
}

fn write_oci(path: &Path, name: &str, layer: &[u8], config: &[u8]) -> Result<(), String> {
    let (layer_d, config_d) = (sha256(layer), sha256(config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_d}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{layer_d}"), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    let manifest_d = sha256(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_d}"), "size": manifest.len(),
            // containerd takes the name from the first, podman from the second.
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name}
        }]
    })
    .to_string()
    .into_bytes();
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    write_tar(
        path,
        &[
            ("oci-layout".into(), layout.as_slice()),
            ("index.json".into(), &index),
            (format!("blobs/sha256/{layer_d}"), layer),
            (format!("blobs/sha256/{config_d}"), config),
            (format!("blobs/sha256/{manifest_d}"), &manifest),
        ],
    )
}

fn write_docker(path: &Path, name: &str, layer: &[u8], config: &[u8]) -> Result<(), String> {
    let (layer_d, config_d) = (sha256(layer), sha256(config));
    let manifest = json!([{
        "Config": format!("{config_d}.json"),
        "RepoTags": [name],
        "Layers": [format!("{layer_d}/layer.tar")]
    }])
    .to_string()
    .into_bytes();
    write_tar(
        path,
        &[
            ("manifest.json".into(), &manifest),
            (format!("{config_d}.json"), config),
            (format!("{layer_d}/layer.tar"), layer),
        ],
    )
}
