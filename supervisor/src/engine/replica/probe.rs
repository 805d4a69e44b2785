//! A replica's health checks: the check command run in the container the way `exec` runs
//! a process, its output read from a pipe, its timeout, and the result judged by
//! [`crate::health`]; an unhealthy container gets what `on-failure` asks.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use harun_runtime::container::{self, Console, ExecOptions, ProcessFlags};
use harun_runtime::pidfd::PidFd;
use harun_runtime::state::Status;
use harun_runtime::{Error, Result};
use nix::fcntl::OFlag;

use super::{millis, Replica};
use crate::engine::{Child, Ctx, Note, Source, Timer};
use crate::events::Kind;
use crate::health::{self, Change, OnFailure, Outcome};
use crate::persist::{HealthRecord, Phase};
use crate::policy::{self, ExitStatus};
use crate::stdio;

/// A health check in progress.
#[derive(Debug)]
pub(super) struct Probe {
    pidfd: PidFd,
    token: u64,
    out: File,
    out_token: u64,
    output: Vec<u8>,
    timed_out: bool,
    /// Its exit, once known (from the pidfd or `waitpid(-1)`), waiting for the output's end.
    status: Option<ExitStatus>,
}

impl Replica {
    /// Runs the health check command in the container, the way `exec` runs a process.
    pub(super) fn start_probe(&mut self, ctx: &mut Ctx<'_>) {
        let Some(check) = self.service.behaviour.health.clone() else {
            return;
        };
        // Only a running container is checked: not one being stopped, nor a frozen one
        // (`harun pause`), whose check could only time out.
        if self.init.is_none() || self.probe.is_some() || self.record.phase != Phase::Running {
            return;
        }
        let paused = ctx
            .root
            .read(&self.id)
            .is_ok_and(|st| st.status(&ctx.root.dir(&self.id)) == Status::Paused);
        if paused {
            ctx.timers.set(
                Timer::Probe(self.id.clone()),
                ctx.mono() + millis(check.interval),
            );
            return;
        }
        match self.spawn_probe(ctx, &check) {
            Ok(probe) => {
                ctx.timers.set(
                    Timer::ProbeTimeout(self.id.clone()),
                    ctx.mono() + millis(check.timeout),
                );
                self.probe = Some(probe);
            }
            Err(e) => self.on_probe_result(
                ctx,
                Outcome {
                    passed: false,
                    output: format!("cannot run the health check: {e}"),
                },
            ),
        }
    }

    fn spawn_probe(&mut self, ctx: &mut Ctx<'_>, check: &health::Check) -> Result<Probe> {
        ctx.allocated = true;
        let state = ctx.root.read(&self.id)?;
        let base = state.config.process().clone().unwrap_or_default();
        let process = container::process_from_flags(
            &base,
            &ProcessFlags {
                args: check.cmd.clone(),
                ..ProcessFlags::default()
            },
        )?;
        let (out_r, out_w): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(Error::sys("pipe2 for the health check"))?;
        // The write end must block for the check (O_NONBLOCK is per open file: a pipe
        // has one, so clear it on the write end's copy).
        let _ = nix::fcntl::fcntl(&out_w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
        let execed = stdio::with_stdio(ctx.null.as_fd(), out_w.as_fd(), out_w.as_fd(), || {
            container::exec(
                ctx.root,
                ExecOptions {
                    id: &self.id,
                    process,
                    pid_file: None,
                    console: Console::None,
                    preserve_fds: 0,
                },
            )
        })??;
        drop(out_w);
        let pid = execed.pidfd.pid();
        let token = ctx.watch(
            execed.pidfd.as_fd(),
            Source::ProbeExit(self.id.clone()),
            "pidfd",
        )?;
        ctx.children.insert(pid, Child::Probe(self.id.clone()));
        let out = File::from(out_r);
        let out_token = ctx.watch(out.as_fd(), Source::ProbeOut(self.id.clone()), "pipe")?;
        Ok(Probe {
            pidfd: execed.pidfd,
            token,
            out,
            out_token,
            output: Vec::new(),
            timed_out: false,
            status: None,
        })
    }

    /// The check took longer than its timeout: killed, it fails.
    pub(super) fn probe_timed_out(&mut self) {
        if let Some(p) = &mut self.probe {
            p.timed_out = true;
            let _ = p.pidfd.signal(libc::SIGKILL);
        }
    }

    /// The check's output pipe is readable (or closed).
    pub fn on_probe_output(&mut self, ctx: &mut Ctx<'_>) {
        let Some(p) = &mut self.probe else { return };
        let output = &mut p.output;
        let open = stdio::drain(&mut p.out, &mut ctx.buf, |data| {
            let room = health::MAX_OUTPUT.saturating_sub(output.len());
            output.extend_from_slice(&data[..data.len().min(room)]);
        })
        .unwrap_or(false);
        if !open && p.out_token != 0 {
            ctx.unwatch(p.out.as_fd(), p.out_token);
            p.out_token = 0;
        }
    }

    /// The check process's pidfd is readable.
    pub fn reap_probe(&mut self, ctx: &mut Ctx<'_>) {
        let Some(p) = &self.probe else { return };
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        if let Ok(ws) = waitid(
            Id::PIDFd(p.pidfd.as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            if let Some(status) = crate::engine::exit_status(ws) {
                self.on_probe_exit(ctx, status);
            }
        }
    }

    /// The check process ended (seen through its pidfd or `waitpid(-1)`).
    pub fn on_probe_exit(&mut self, ctx: &mut Ctx<'_>, status: ExitStatus) {
        let Some(p) = &mut self.probe else { return };
        ctx.children.remove(&p.pidfd.pid());
        if p.token != 0 {
            ctx.unwatch(p.pidfd.as_fd(), p.token);
            p.token = 0;
        }
        p.status = Some(status);
        self.on_probe_output(ctx);
        self.finish_probe_if_done(ctx);
    }

    /// Once the process has ended: judge the result. (Its output was read up to then; a
    /// process it left behind in the container may hold the pipe open, so the pipe's end
    /// is not waited for.)
    fn finish_probe_if_done(&mut self, ctx: &mut Ctx<'_>) {
        if self.probe.as_ref().is_none_or(|p| p.status.is_none()) {
            return;
        }
        let Some(p) = self.probe.take() else { return };
        if p.out_token != 0 {
            ctx.unwatch(p.out.as_fd(), p.out_token);
        }
        ctx.timers.cancel(&Timer::ProbeTimeout(self.id.clone()));
        let mut output = String::from_utf8_lossy(&p.output).into_owned();
        let passed = !p.timed_out && p.status == Some(ExitStatus::Code(0));
        if p.timed_out {
            let timeout = self
                .service
                .behaviour
                .health
                .as_ref()
                .map_or(Duration::ZERO, |c| c.timeout);
            output = format!(
                "health check timed out after {}{}{}",
                crate::format_duration(timeout),
                if output.is_empty() { "" } else { ": " },
                output
            );
        } else if let Some(status @ ExitStatus::Signal(_)) = p.status {
            output = format!("health check {status}: {output}");
        }
        self.on_probe_result(ctx, Outcome { passed, output });
    }

    /// A check that is still running when the container ends is killed; its result no
    /// longer matters.
    pub(super) fn stop_probe(&mut self, ctx: &mut Ctx<'_>) {
        ctx.timers.cancel(&Timer::Probe(self.id.clone()));
        ctx.timers.cancel(&Timer::ProbeTimeout(self.id.clone()));
        if let Some(p) = self.probe.take() {
            let _ = p.pidfd.signal(libc::SIGKILL);
            if p.token != 0 {
                ctx.unwatch(p.pidfd.as_fd(), p.token);
            }
            if p.out_token != 0 {
                ctx.unwatch(p.out.as_fd(), p.out_token);
            }
            if p.status.is_none() {
                // It is our child: `waitpid(-1)` reaps it on SIGCHLD, and drops it.
                ctx.children.insert(p.pidfd.pid(), Child::Orphan);
            }
        }
    }

    pub(super) fn on_probe_result(&mut self, ctx: &mut Ctx<'_>, outcome: Outcome) {
        let Some(check) = self.service.behaviour.health.clone() else {
            return;
        };
        let Some(h) = &mut self.health else { return };
        let now = ctx.now();
        let output = outcome.output.clone();
        let change = h.on_result(&check, outcome, now);
        self.record.health = Some(HealthRecord {
            status: h.status.to_string(),
            failing_streak: h.failing_streak,
            last_output: h.last_output.clone(),
            last_at_ms: h.last_at.map(|t| t.as_millis()),
        });
        let status = h.status;
        if self.init.is_some() {
            ctx.timers.set(
                Timer::Probe(self.id.clone()),
                ctx.mono() + millis(check.interval),
            );
        }
        if change != Change::None {
            self.persist(ctx);
            self.emit(
                ctx,
                self.event(Kind::Health)
                    .health(status.as_str())
                    .reason(output.trim_end().to_string()),
            );
        }
        self.update_ready(ctx);
        if let Change::BecameUnhealthy(action) = change {
            ctx.notes.push(Note::Unhealthy(
                self.id.clone(),
                format!("unhealthy: {}", output.trim_end()),
            ));
            match action {
                OnFailure::Restart => self.request(ctx, policy::Event::Unhealthy),
                OnFailure::Kill => self.kill_now(ctx),
                OnFailure::Stop => {
                    self.request(ctx, policy::Event::StopRequested { timeout: None })
                }
                OnFailure::None => {}
            }
        }
    }
}
