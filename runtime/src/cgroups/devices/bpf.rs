//! The BPF_PROG_TYPE_CGROUP_DEVICE program for a rule list, assembled by hand.
//!
//! The kernel runs it with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
//! minor; }` (access_type = access << 16 | type) and allows the access when it returns 1.
//! Layout: one pass over the rules, last first, each testing the device once; r7 holds the
//! access bits still undecided:
//!
//! ```text
//!   r7 = access & (mknod|read|write)
//!   for rule in rules, last first:
//!       if rule's type/major/minor differ goto next_rule     (field loaded into r6 each time)
//!       allow: r7 &= ~rule.access; if r7 == 0 return 1
//!       deny:  if r7 & rule.access return 0
//!     next_rule:
//!   return r7 == 0                                           (undecided bits: deny)
//! ```
//!
//! That is [`super::allows`]: for each bit the last matching rule naming it decides. Device
//! fields are reloaded from the context for every test and r7 only ever loses bits, so the
//! verifier's states at each label cover one another and it checks the program in about one
//! pass. (Two earlier shapes, one chain of rules per access bit, made it process 1174 and
//! then 512 instructions for the default rules, ~0.8 ms per container; this one is half as
//! long as the second.)

use super::{Rule, ALL_ACCESS};
use crate::{Error, Result};

/// One instruction, `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one (little-endian bitfields).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h): class | op | source.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers.
const R0: u8 = 0;
const R1: u8 = 1; // the context
const R6: u8 = 6; // scratch: the context field being tested
const R7: u8 = 7; // the access bits not decided yet

fn regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    }
}

/// A tiny assembler with forward labels.
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn emit(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: regs(dst, src),
            off,
            imm,
        });
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }

    /// A jump (`code` with `dst` and `imm`) to `label`.
    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.emit(code, dst, 0, 0, imm);
    }

    fn ret(&mut self, v: i32) {
        self.emit(ALU32_MOV_K, R0, 0, 0, v);
        self.emit(JMP_EXIT, 0, 0, 0, 0);
    }

    fn finish(mut self) -> Result<Vec<Insn>> {
        for (at, label) in self.fixups {
            let target = self.labels[label].expect("every label is bound");
            let off = i16::try_from(target as i64 - at as i64 - 1).map_err(|_| {
                Error::spec("linux.resources.devices", "too many rules for one program")
            })?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}

/// The program implementing [`super::allows`] for `rules`.
pub fn program(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut a = Asm {
        insns: Vec::new(),
        labels: Vec::new(),
        fixups: Vec::new(),
    };
    let (allowed, denied) = (a.label(), a.label());
    a.emit(LDX_MEM_W, R7, R1, 0, 0);
    a.emit(ALU32_RSH_K, R7, 0, 0, 16);
    a.emit(ALU32_AND_K, R7, 0, 0, i32::from(ALL_ACCESS));
    for rule in rules.iter().rev() {
        let bits = i32::from(rule.access & ALL_ACCESS);
        if bits == 0 {
            continue;
        }
        let next_rule = a.label();
        if let Some(t) = rule.kind.number() {
            a.emit(LDX_MEM_W, R6, R1, 0, 0);
            a.emit(ALU32_AND_K, R6, 0, 0, 0xffff);
            a.jump(JMP_JNE_K, R6, t as i32, next_rule);
        }
        if let Some(m) = rule.major {
            a.emit(LDX_MEM_W, R6, R1, 4, 0);
            a.jump(JMP_JNE_K, R6, m as i32, next_rule);
        }
        if let Some(m) = rule.minor {
            a.emit(LDX_MEM_W, R6, R1, 8, 0);
            a.jump(JMP_JNE_K, R6, m as i32, next_rule);
        }
        if rule.allow {
            a.emit(ALU32_AND_K, R7, 0, 0, !bits);
            a.jump(JMP_JEQ_K, R7, 0, allowed);
        } else {
            a.emit(ALU32_MOV_X, R6, R7, 0, 0);
            a.emit(ALU32_AND_K, R6, 0, 0, bits);
            a.jump(JMP_JNE_K, R6, 0, denied);
        }
        a.bind(next_rule);
    }
    a.jump(JMP_JEQ_K, R7, 0, allowed);
    a.bind(denied);
    a.ret(0);
    a.bind(allowed);
    a.ret(1);
    a.finish()
}

#[cfg(test)]
pub(super) mod interp {
    //! Runs a generated program the way the kernel would, for the opcodes `program` emits.
    use super::*;

    fn dst(i: &Insn) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            i.regs & 0xf
        } else {
            i.regs >> 4
        })
    }
    fn src(i: &Insn) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            i.regs >> 4
        } else {
            i.regs & 0xf
        })
    }

    /// The program's answer for (type number, major, minor, access); panics on anything the
    /// verifier would refuse (a bad opcode, falling off the end, reading outside the
    /// context).
    pub fn run(prog: &[Insn], typ: u32, major: u32, minor: u32, access: u8) -> u64 {
        let ctx = [(u32::from(access) << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = &prog[pc];
            pc += 1;
            let (d, s) = (dst(i), src(i));
            let imm32 = i.imm as u32;
            let jump = |pc: usize| (pc as i64 + i64::from(i.off)) as usize;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, R1 as usize);
                    let at = i.off as usize;
                    assert!(at.is_multiple_of(4) && at < 12, "context read at {at}");
                    r[d] = u64::from(ctx[at / 4]);
                }
                ALU32_AND_K => r[d] = u64::from(r[d] as u32 & imm32),
                ALU32_RSH_K => r[d] = u64::from((r[d] as u32) >> imm32),
                ALU32_MOV_K => r[d] = u64::from(imm32),
                ALU32_MOV_X => r[d] = u64::from(r[s] as u32),

                JMP_JEQ_K => {
                    if r[d] == i.imm as i64 as u64 {
                        pc = jump(pc)
                    }
                }
                JMP_JNE_K => {
                    if r[d] != i.imm as i64 as u64 {
                        pc = jump(pc)
                    }
                }
                JMP_EXIT => return r[R0 as usize],
                c => panic!("opcode {c:#x} at {}", pc - 1),
            }
        }
        panic!("the program does not end");
    }

    /// Every instruction is reachable (the verifier refuses dead code).
    pub fn all_reachable(prog: &[Insn]) -> bool {
        let mut seen = vec![false; prog.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if pc >= prog.len() || seen[pc] {
                continue;
            }
            seen[pc] = true;
            let i = &prog[pc];
            let target = (pc as i64 + 1 + i64::from(i.off)) as usize;
            match i.code {
                JMP_EXIT => {}
                JMP_JEQ_K | JMP_JNE_K => todo.extend([pc + 1, target]),
                _ => todo.push(pc + 1),
            }
        }
        seen.iter().all(|s| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{allows, rules, tests::DEFAULT_CASES, Kind, ALL_ACCESS, MKNOD, READ, WRITE};
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroup;

    fn rule_list(json: &str) -> Vec<Rule> {
        let d: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        rules(Some(&d)).unwrap()
    }

    /// The program gives the same answer as `allows` on every device in a grid.
    fn agrees(rules: &[Rule]) {
        let prog = program(rules).unwrap();
        assert!(interp::all_reachable(&prog), "dead code in {prog:?}");
        let numbers = [0u32, 1, 3, 4, 5, 7, 8, 9, 10, 136, 200, 4095];
        for kind in [Kind::Block, Kind::Char] {
            for major in numbers {
                for minor in numbers {
                    for access in 1..=ALL_ACCESS {
                        let want = allows(rules, kind, major, minor, access);
                        let typ = kind.number().unwrap();
                        let got = interp::run(&prog, typ, major, minor, access);
                        assert_eq!(
                            got,
                            u64::from(want),
                            "{kind:?} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn program_matches_the_rules() {
        let deny_all = rule_list(r#"[{"allow": false, "access": "rwm"}]"#);
        agrees(&deny_all);
        let prog = program(&deny_all).unwrap();
        for (kind, maj, min, acc, want) in DEFAULT_CASES {
            let got = interp::run(&prog, kind.number().unwrap(), *maj, *min, *acc);
            assert_eq!(got, u64::from(*want), "{kind:?} {maj}:{min} {acc}");
        }
        agrees(&rules(None).unwrap());
        agrees(&rule_list(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "rw"},
                {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "w"},
                {"allow": true, "type": "b", "major": 8, "access": "r"},
                {"allow": false, "type": "c", "major": 136, "minor": 7, "access": "rwm"}]"#,
        ));
        agrees(&rule_list(
            r#"[{"allow": true, "access": "rwm"},
                {"allow": false, "type": "b", "access": "w"},
                {"allow": false, "type": "c", "minor": 4, "access": "m"}]"#,
        ));
        // Only allow rules, no wildcard: the chains end in "deny".
        agrees(&[Rule {
            allow: true,
            kind: Kind::Char,
            major: Some(4),
            minor: None,
            access: READ | MKNOD,
        }]);
        agrees(&[]);
        let _ = WRITE;
    }

    /// Random rule lists (a fixed-seed generator): the program agrees with `allows` on each.
    #[test]
    fn program_matches_random_rule_lists() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let numbers = [None, Some(1), Some(5), Some(136)];
        for _ in 0..150 {
            let list: Vec<Rule> = (0..next(7))
                .map(|_| Rule {
                    allow: next(2) == 0,
                    kind: [Kind::All, Kind::Block, Kind::Char][next(3) as usize],
                    major: numbers[next(4) as usize],
                    minor: numbers[next(4) as usize],
                    access: next(8) as u8,
                })
                .collect();
            agrees(&list);
        }
    }

    #[test]
    fn encodings() {
        let prog = program(&[]).unwrap();
        // r7 = *(u32 *)(r1 + 0)
        assert_eq!(
            prog[0],
            Insn {
                code: 0x61,
                regs: 0x17,
                off: 0,
                imm: 0
            }
        );
        // The last two: w0 = 1; exit.
        let n = prog.len();
        assert_eq!(
            prog[n - 2],
            Insn {
                code: 0xb4,
                regs: 0x00,
                off: 0,
                imm: 1
            }
        );
        assert_eq!(
            prog[n - 1],
            Insn {
                code: 0x95,
                regs: 0x00,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
