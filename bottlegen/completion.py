"""Shell completion for bash, zsh and fish, generated from the command's own parser, so
it cannot drift from the options. `bottlegen completion SHELL` prints the script; it is
built only then, never on the render path.

What a value completes to comes from the option: its choices, else its metavar (DIR: a
folder, FILE or PLAN: a file, CODE: a warning's code, SHELL: a shell), else nothing. Three
come from what exists when the user presses tab, asked of bottlegen and docker themselves:
a bottle's name (`-p`: `bottlegen ls --format names`), one of its services (`logs`, `exec`:
`bottlegen ps --services`, for the bottle the line names with -p, --state-dir or
--context), and a docker context (`--context`: `docker context ls`).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .lints import KINDS

SHELLS = ("bash", "zsh", "fish")
# What is completed by asking, when tab is pressed: by the option's or argument's dest.
DYNAMIC = {"project": "projects", "context": "contexts", "services": "services", "words": "services"}
# The options that say which bottle and engine a command is about: passed on when asking for services.
_BOTTLE_FLAGS = ("-p", "--project", "--state-dir", "--context")


@dataclass
class _Option:
    flags: list[str]
    takes: str | None  # what its value completes to: "files", "dirs", "words", or one of DYNAMIC; None: no value
    words: list[str] = field(default_factory=list)
    help: str = ""


@dataclass
class _Command:
    words: tuple[str, ...]  # ("templates", "list")
    help: str
    options: list[_Option]
    positional: str | None  # what its arguments complete to, as _Option.takes
    positional_words: list[str] = field(default_factory=list)
    subcommands: list[str] = field(default_factory=list)


def _value(action: argparse.Action, extra: Mapping[str, Sequence[str]]) -> tuple[str | None, list[str]]:
    if action.nargs == 0:
        return None, []
    if action.dest in DYNAMIC and not action.choices:
        return DYNAMIC[action.dest], []
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        return "words", [str(c) for c in action.choices]
    metavar = str(action.metavar or action.dest).upper()
    if metavar in extra:
        return "words", list(extra[metavar])
    if metavar in ("DIR",):
        return "dirs", []
    if metavar in ("FILE", "PLAN", "PLANS"):
        return "files", []
    return "none", []


def _commands(parser: argparse.ArgumentParser, extra: Mapping[str, Sequence[str]]) -> list[_Command]:
    found = []
    todo: list[tuple[tuple[str, ...], argparse.ArgumentParser, str]] = [((), parser, parser.description or "")]
    while todo:
        words, p, what = todo.pop(0)
        options: list[_Option] = []
        positional: str | None = None
        positional_words: list[str] = []
        subcommands: list[str] = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help or "" for a in action._choices_actions}
                for name, sub in action.choices.items():
                    subcommands.append(name)
                    todo.append(((*words, name), sub, helps.get(name, "")))
            elif action.option_strings:
                takes, choices = _value(action, extra)
                options.append(_Option(list(action.option_strings), takes, choices, action.help or ""))
            else:
                positional, positional_words = _value(action, extra)
        found.append(_Command(words, what, options, positional, positional_words, subcommands))
    return found


def script(parser: argparse.ArgumentParser, shell: str, templates: Sequence[str] = ()) -> str:
    """The completion script for shell, of every command and option parser knows."""
    from . import explain, resources

    keys = [k for k in explain.key_paths(resources.load_schema(resources.PLAN_SCHEMA)) if "*" not in k]
    extra = {"CODE": [k.code for k in KINDS], "SHELL": list(SHELLS), "NAME": list(templates), "KEY.PATH": keys}
    commands = _commands(parser, extra)
    if shell == "fish":
        return _fish(commands)
    body = _bash(commands)
    if shell == "zsh":  # zsh runs bash's completion functions through bashcompinit
        return "#compdef bottlegen\nautoload -U +X bashcompinit && bashcompinit\n" + body
    return body


_BASH_ASK = {
    "projects": "$(bottlegen ls --format names $(_bottlegen_flags --context) 2>/dev/null)",
    "services": "$(bottlegen ps --services $(_bottlegen_flags) 2>/dev/null)",
    "contexts": "$(docker context ls --format '{{.Name}}' 2>/dev/null)",
}


def _compgen(takes: str | None, words: Sequence[str]) -> str:
    if takes in _BASH_ASK:
        # exec's service comes before `--`; after it, the words are the command's
        done = '[[ " ${COMP_WORDS[*]:1:COMP_CWORD-1} " == *" -- "* ]] && return; ' if takes == "services" else ""
        return f'{done}local IFS=$\'\\n\'; COMPREPLY=($(compgen -W "{_BASH_ASK[takes]}" -- "$cur"))'
    if takes == "files":
        return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'
    if takes == "dirs":
        return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))'
    if takes == "words":
        return f'COMPREPLY=($(compgen -W {shlex.quote(" ".join(words))} -- "$cur"))'
    return "COMPREPLY=()"


def _bash(commands: list[_Command]) -> str:
    lines = [
        "# bash completion for bottlegen (generated by `bottlegen completion bash`)",
        "_bottlegen_flags() {  # the line's options that name a bottle or engine (only those given, if any)",
        "  local i",
        "  for ((i = 1; i < COMP_CWORD - 1; i++)); do",
        '    case "${COMP_WORDS[i]}" in',
        f"      {'|'.join(_BOTTLE_FLAGS)})",
        '        if [[ $# == 0 || " $* " == *" ${COMP_WORDS[i]} "* ]]; then',
        '          printf "%s\\n" "${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}"',
        "        fi ;;",
        "    esac",
        "  done",
        "}",
        "_bottlegen() {",
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i word',
        "  for ((i = 1; i < COMP_CWORD; i++)); do",
        '    word="${COMP_WORDS[i]}"',
        "    [[ $word == -* ]] && continue",
        '    case "$cmd" in',
        '      "") cmd="$word" ;;',
        *(
            f'      {shlex.quote(" ".join(c.words))}) cmd="$cmd $word"; break ;;'
            for c in commands
            if c.words and c.subcommands
        ),
        "      *) break ;;",
        "    esac",
        "  done",
        '  case "$cmd" in',
    ]
    for command in commands:
        label = shlex.quote(" ".join(command.words)) if command.words else '""'
        flags = [f for o in command.options for f in o.flags]
        lines.append(f"    {label})")
        valued = [o for o in command.options if o.takes is not None]
        if valued:
            lines.append('      case "$prev" in')
            for option in valued:
                lines.append(f"        {'|'.join(option.flags)}) {_compgen(option.takes, option.words)}; return ;;")
            lines.append("      esac")
        lines.append("      if [[ $cur == -* ]]; then")
        lines.append(f"        {_compgen('words', flags)}")
        lines.append("      else")
        if command.subcommands:
            lines.append(f"        {_compgen('words', command.subcommands)}")
        else:
            lines.append(f"        {_compgen(command.positional, command.positional_words)}")
        lines.append("      fi ;;")
    lines += ["  esac", "}", "complete -F _bottlegen bottlegen", ""]
    return "\n".join(lines)


_FISH_ASK = {
    "projects": "(bottlegen ls --format names (__bottlegen_flags --context) 2>/dev/null)",
    "services": "(bottlegen ps --services (__bottlegen_flags) 2>/dev/null)",
    "contexts": "(docker context ls --format '{{.Name}}' 2>/dev/null)",
}


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(commands: list[_Command]) -> str:
    lines = [
        "# fish completion for bottlegen (generated by `bottlegen completion fish`)",
        "complete -c bottlegen -f",
        "function __bottlegen_flags  # the line's options that name a bottle or engine",
        "    set -l words (commandline -opc)",
        "    for i in (seq 2 (math (count $words) - 1))",
        f"        if contains -- $words[$i] {' '.join(_BOTTLE_FLAGS)}; and begin; test (count $argv) -eq 0; or contains -- $words[$i] $argv; end",
        "            echo $words[$i]; echo $words[(math $i + 1)]",
        "        end",
        "    end",
        "end",
    ]
    for command in commands:
        if not command.words:
            condition = "__fish_use_subcommand"
        elif len(command.words) == 1:
            condition = f"__fish_seen_subcommand_from {command.words[0]}"
            if command.subcommands:
                condition += f"; and not __fish_seen_subcommand_from {' '.join(command.subcommands)}"
        else:
            condition = (
                f"__fish_seen_subcommand_from {command.words[0]}; and __fish_seen_subcommand_from {command.words[-1]}"
            )
        base = f"complete -c bottlegen -n {_fish_quote(condition)}"
        for sub in command.subcommands:
            helps = next((c.help for c in commands if c.words == (*command.words, sub)), "")
            lines.append(f"{base} -a {sub} -d {_fish_quote(_short(helps))}")
        for option in command.options:
            spec = " ".join(f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}" for f in option.flags)
            if option.takes == "files":
                spec += " -r -F"
            elif option.takes == "dirs":
                spec += " -r -a '(__fish_complete_directories)'"
            elif option.takes == "words":
                spec += f" -x -a {_fish_quote(' '.join(option.words))}"
            elif option.takes in _FISH_ASK:
                spec += f" -x -a {_fish_quote(_FISH_ASK[option.takes])}"
            elif option.takes == "none":
                spec += " -x"
            lines.append(f"{base} {spec} -d {_fish_quote(_short(option.help))}")
        if command.words and not command.subcommands:
            if command.positional == "files":
                lines.append(f"{base} -F")
            elif command.positional == "words":
                lines.append(f"{base} -a {_fish_quote(' '.join(command.positional_words))}")
            elif command.positional in _FISH_ASK:
                lines.append(f"{base} -a {_fish_quote(_FISH_ASK[command.positional])}")
    return "\n".join(lines) + "\n"


def _short(text: str) -> str:
    first = text.split(";")[0].split(" (")[0].strip()
    return first[:70]
