"""Old spellings of commands and flags, kept for one release: rewritten to the current ones with a notice.

The length penalty had several names (`--lambda`, `lambda-sweep`, `--penalties`); it is now
`length_penalty` everywhere. The old spellings are translated here, before typer parses the command
line, so that each option keeps one declaration (the current name, the only one `--help` shows) and
the old names live in one table that is easy to drop in the next release.
"""

from __future__ import annotations

# old command name -> current command name
DEPRECATED_COMMANDS = {"lambda-sweep": "length-penalty-sweep"}

# current command name -> {old flag -> current flag}
DEPRECATED_FLAGS = {
    "label": {"--lambda": "--length-penalty"},
    "length-penalty-sweep": {"--penalties": "--length-penalties"},
}


def deprecation_notice(old: str, new: str) -> str:
    """The one line printed on stderr when an old spelling is used."""
    return f"`{old}` is deprecated, use `{new}`"


def translate_deprecated(argv: list[str]) -> tuple[list[str], list[str]]:
    """Rewrite old command and flag spellings in `argv` to the current ones; returns (argv, notices).

    The command is the first argument that is not an option. Flags are rewritten only for that command
    and only before a `--` separator (after it, arguments are values, not options); `--flag=value` is
    rewritten too.
    """
    translated = list(argv)
    notices: list[str] = []
    command_index = next((i for i, arg in enumerate(translated) if not arg.startswith("-")), None)
    if command_index is None:
        return translated, notices
    command = translated[command_index]
    if command in DEPRECATED_COMMANDS:
        command = DEPRECATED_COMMANDS[command]
        notices.append(deprecation_notice(translated[command_index], command))
        translated[command_index] = command
    renamed_flags = DEPRECATED_FLAGS.get(command, {})
    for index in range(command_index + 1, len(translated)):
        flag, equals, value = translated[index].partition("=")
        if flag == "--":
            break
        if flag in renamed_flags:
            translated[index] = renamed_flags[flag] + equals + value
            notices.append(deprecation_notice(flag, renamed_flags[flag]))
    return translated, notices
