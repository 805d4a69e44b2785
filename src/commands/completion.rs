//! Shell completion and the man page, both generated from the clap definitions at run
//! time, so they never drift from the commands.
//!
//! `harun completion SHELL` prints a small script that asks harun itself what fits
//! (`harun __complete -- WORDS...`, handled in main.rs before parsing): commands, flags with their help, the values of a flag
//! (`--log-format` → text, json), files for paths, and the IDs of existing containers for
//! commands that take one. `harun man` prints the man page in roff. (clap_complete and
//! clap_mangen would add about 120 KiB to the 2.5 MiB static binary; this is a few KiB.)

use std::fmt::Write as _;

use clap::builder::ValueHint;
use clap::{Arg, ArgAction};
use harun_runtime::state::StateRoot;
use harun_runtime::Result;

use crate::cli::Shell;

/// What `__complete` prints for "complete a file name here".
const FILES: &str = ":files";

pub fn script(shell: Shell) -> Result<i32> {
    let text = match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    };
    crate::output::stdout(text.as_bytes());
    Ok(0)
}

const BASH: &str = r#"# harun completion for bash: source <(harun completion bash)
_harun() {
    local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
    local out
    out=$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    if [[ $out == :files ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
    else
        COMPREPLY=($(compgen -W "$(printf '%s\n' "$out" | cut -f1)" -- "$cur"))
    fi
}
complete -F _harun harun
"#;

const ZSH: &str = r#"#compdef harun
# harun completion for zsh: harun completion zsh > "${fpath[1]}/_harun"
_harun() {
    local -a lines cands
    local line
    lines=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ $lines[1] == :files ]]; then
        _files
        return
    fi
    for line in $lines; do
        [[ -n $line ]] && cands+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
    done
    _describe harun cands
}
if [[ $funcstack[1] == _harun ]]; then _harun "$@"; else compdef _harun harun; fi
"#;

const FISH: &str = r#"# harun completion for fish: harun completion fish > ~/.config/fish/completions/harun.fish
function __harun_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l out ($words[1] __complete -- $words[2..-1] 2>/dev/null)
    if test "$out[1]" = :files
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $out
    end
end
complete -c harun -f -a '(__harun_complete)'
"#;

/// `harun __complete -- WORDS...`: the candidates for the last word, one per line, each with
/// a tab and a description when there is one; or [`FILES`].
pub fn complete(words: &[String]) -> i32 {
    let mut top = crate::command();
    top.build();
    let (current, before) = match words.split_last() {
        Some((c, b)) => (c.as_str(), b),
        None => ("", &[][..]),
    };
    let mut cmd = &top;
    let mut root = StateRoot::new(crate::cli::DEFAULT_ROOT);
    let mut positionals = 0;
    let mut value_of: Option<&Arg> = None;
    for word in before {
        if let Some(arg) = value_of.take() {
            if arg.get_id() == "root" {
                root = StateRoot::new(word);
            }
        } else if word == "--" {
            return 0; // the container's command: nothing of harun's
        } else if let Some(long) = word.strip_prefix("--") {
            value_of = cmd.get_arguments().find(|a| a.get_long() == Some(long));
        } else if word.len() > 1 && word.starts_with('-') {
            // `-abc`: a value-taking last letter takes the next word.
            let last = word.chars().last();
            value_of = cmd.get_arguments().find(|a| a.get_short() == last);
        } else if let Some(sub) = cmd.find_subcommand(word) {
            cmd = sub;
            positionals = 0;
        } else {
            positionals += 1;
        }
        value_of = value_of.filter(|a| takes_value(a));
    }
    let mut out = String::new();
    if let Some(arg) = value_of {
        values(arg, &root, &mut out);
    } else if current.starts_with('-') {
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let help = about(a.get_help());
            if let Some(long) = a.get_long() {
                let _ = writeln!(out, "--{long}\t{help}");
            }
            if let Some(short) = a.get_short() {
                let _ = writeln!(out, "-{short}\t{help}");
            }
        }
    } else if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let _ = writeln!(out, "{}\t{}", sub.get_name(), about(sub.get_about()));
        }
    } else if let Some(arg) = cmd.get_positionals().nth(positionals).or_else(|| {
        // `delete A B ...`: the same list again.
        let mut all = cmd.get_positionals();
        all.find(|a| matches!(a.get_action(), ArgAction::Append))
    }) {
        values(arg, &root, &mut out);
    }
    crate::output::stdout(out.as_bytes());
    0
}

fn takes_value(a: &Arg) -> bool {
    a.get_action().takes_values()
}

/// The values `arg` takes: its fixed ones, files, or container IDs.
fn values(arg: &Arg, root: &StateRoot, out: &mut String) {
    let fixed = arg.get_possible_values();
    if !fixed.is_empty() {
        for v in fixed {
            let _ = writeln!(out, "{}\t{}", v.get_name(), about(v.get_help()));
        }
        return;
    }
    let name = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map_or("", |n| n.as_str());
    let path = matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
    );
    if name == "ID" || (name.is_empty() && arg.get_id() == "id") {
        for id in root.ids().unwrap_or_default() {
            if harun_runtime::state::validate_id(&id).is_ok() && !id.starts_with('.') {
                let _ = writeln!(out, "{id}");
            }
        }
    } else if path || ["FILE", "DIR", "PATH", "ID|BUNDLE"].contains(&name) {
        out.push_str(FILES);
        out.push('\n');
    }
}

/// A help text's first line, plain.
fn about(text: Option<&clap::builder::StyledStr>) -> String {
    text.map(|t| t.to_string().lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// `harun man`: section 1, the text of `--help` of harun and of every command (clap's own
/// rendering, preformatted), so the page says exactly what `--help` says.
pub fn man() -> Result<i32> {
    let mut top = crate::command();
    top.build();
    let mut m = format!(
        ".TH HARUN 1 \"\" \"harun {}\" \"User Commands\"\n.SH NAME\nharun \\- {}\n\
         .SH SYNOPSIS\n\\fBharun\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] \
         [\\fIARGS\\fR]\n.SH DESCRIPTION\n.nf\n{}\n.fi\n.SH COMMANDS\n",
        roff(crate::version::SHORT),
        roff(&about(top.get_about())),
        roff(&top.render_long_help().to_string()),
    );
    for sub in top.get_subcommands_mut().filter(|s| !s.is_hide_set()) {
        let help = sub.render_long_help().to_string();
        let _ = write!(m, ".SS {}\n.nf\n{}\n.fi\n", sub.get_name(), roff(&help));
    }
    m.push_str(
        ".SH EXIT STATUS\n0 on success; 1 on an error, with one line on stderr naming the \
         cause. A foreground \\fBrun\\fR or \\fBexec\\fR exits with the code of the container's \
         process (128+N when signal N killed it).\n.SH SEE ALSO\nrunc(8); harun's README: \
         sizes and durations, supervision, overlay rootfs.\n",
    );
    crate::output::stdout(m.as_bytes());
    Ok(0)
}

/// Text for roff: backslashes and hyphens escaped, no line starting with a control
/// character (indentation is kept: the help text is preformatted).
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::new();
    for line in escaped.lines() {
        if line.starts_with(['.', '\'']) {
            out.push_str("\\&");
        }
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes() {
        assert_eq!(roff("a-b \\ c"), "a\\-b \\e c");
        assert_eq!(roff(".x\n  'y\nz"), "\\&.x\n  'y\nz");
    }
}
