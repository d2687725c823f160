//! Shell completions, with the repairs bash needs.
//!
//! clap_complete's bash script names its states after the binary with `-` turned into `__`
//! (`bb__snyk__mirror__subcmd__sync`) but labels its cases with `-` turned into `__subcmd__`
//! (`bb__subcmd__snyk__subcmd__mirror__subcmd__sync`), so nothing after the first word completes
//! for a hyphenated binary. And bash splits words at `:` (`orgs:create` arrives as `orgs`, `:`,
//! `create`). The script is repaired: the labels are renamed to the states, and the completion
//! function is wrapped by one that joins words split at `:` and trims the part before the
//! colon from the replies, as bash expects.

use clap_complete::Shell;

/// The snyk-api-import commands, whose names hold a colon.
const COLON_COMMANDS: [&str; 4] = ["orgs:data", "orgs:create", "import:data", "list:imported"];

/// The binary's name.
const BIN: &str = "bb-snyk-mirror";

/// The wrapper bash calls: joins `a`, `:`, `b` back into `a:b`, then completes.
const BASH_WRAPPER: &str = r#"
_bb_snyk_mirror_complete() {
    local -a words=()
    local i w glue=0 cword=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w="${COMP_WORDS[i]}"
        if [[ "$w" == ":" && ${#words[@]} -gt 1 ]]; then
            words[${#words[@]}-1]+=":"
            glue=1
        elif ((glue)); then
            words[${#words[@]}-1]+="$w"
            glue=0
        else
            words+=("$w")
        fi
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    local cur="${words[cword]}" prev=""
    ((cword > 0)) && prev="${words[cword-1]}"
    COMP_WORDS=("${words[@]}")
    COMP_CWORD=$cword
    _bb__snyk__mirror "${words[0]}" "$cur" "$prev"
    if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
        local prefix="${cur%"${cur##*:}"}"
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]="${COMPREPLY[i]#"$prefix"}"
        done
    fi
}
"#;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::completion_command(), BIN, &mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::Zsh {
        // zsh reads `name:description` in its command lists: a name with a colon of its own
        // (`orgs:data`) must escape it, or zsh offers `orgs` described as `data:…`.
        for name in COLON_COMMANDS {
            let escaped = name.replace(':', "\\:");
            text = text.replace(&format!("'{name}:"), &format!("'{escaped}:"));
        }
    }
    if shell != Shell::Bash {
        return text;
    }
    let text = text
        .replace("bb__subcmd__snyk__subcmd__mirror", "bb__snyk__mirror")
        .replace(
            "complete -F _bb__snyk__mirror ",
            "complete -F _bb_snyk_mirror_complete ",
        );
    // The wrapper goes before the `complete` lines, after the generated function.
    match text.find("\nif [[ \"${BASH_VERSINFO[0]}\"") {
        Some(at) => format!("{}{BASH_WRAPPER}{}", &text[..at], &text[at..]),
        None => format!("{text}{BASH_WRAPPER}"),
    }
}
