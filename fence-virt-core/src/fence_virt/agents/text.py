"""Usage, ``-h`` help, ``-o metadata`` XML and the ``-d`` dump, generated as the C agent does."""

from __future__ import annotations

from fence_virt.agents import table

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.options import AgentArgs

# output_help_text(20, 55, ...): option column and description column widths
_OPTION_WIDTH = 20
_HELP_WIDTH = 55
_NOTE = "NOTE: reboot-action does not power on nodes that are powered off."
_STDIN_HELP = (
    "With no command line argument, arguments are read from standard input.\n"
    "Arguments read from standard input take the form of:\n"
    "\n"
    "    arg1=value1\n"
    "    arg2=value2\n"
    "\n"
)
_ACTIONS = (
    "null",
    "on",
    "off",
    "reboot",
    "metadata",
    "status",
    "monitor",
    "list",
    "list-status",
    "validate-all",
)


def _column(text: str, width: int) -> str:
    """printf's ``%-*.*s``: left-justified, padded and cut to ``width``."""
    return text[:width].ljust(width)


def _help_rows(option: str, description: str) -> list[str]:
    """One option's lines: the description wrapped at the last space before column 55."""
    rows = []
    while True:
        cut = -1
        if len(description) > _HELP_WIDTH:
            cut = description.rfind(" ", 1, _HELP_WIDTH + 1)
        shown = description if cut < 0 else description[:cut]
        rows.append(f"  {_column(option, _OPTION_WIDTH)}  {_column(shown, _HELP_WIDTH)}")
        if cut < 0:
            return rows
        option, description = " ", description[cut + 1 :]


def usage(program: str, optstring: str, *, stdin_names: bool) -> str:
    """args_usage: the option table by letters (with its header) or by stdin names."""
    lines = [] if stdin_names else [f"usage: {program} [args]", "", _NOTE, ""]
    for spec in table.letters(optstring):
        if spec.deprecated:
            continue
        if not stdin_names:
            lines += _help_rows(spec.usage or "", spec.description)
        elif spec.name:
            lines += _help_rows(spec.name, spec.description)
    return "\n".join(lines) + "\n\n"


def full_help(program: str, optstring: str) -> str:
    """``-h``: both tables and the stdin explanation between them."""
    return (
        usage(program, optstring, stdin_names=False)
        + _STDIN_HELP
        + usage(program, optstring, stdin_names=True)
    )


def _xml_text(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _parameter(spec: table.ArgSpec, letter: str) -> list[str]:
    if spec.compat:
        extra = ' deprecated="1"'
    elif spec.obsoletes:
        extra = f' obsoletes="{spec.obsoletes}"'
    else:
        extra = ' deprecated="1"' if spec.deprecated else ""
    default = f' default="{spec.default}"' if spec.default is not None else ""
    return [
        f'\t<parameter name="{spec.name}" unique="0" required="{int(spec.required)}"{extra}>',
        f'\t\t<getopt mixed="{letter}" />',
        f'\t\t<content type="{spec.content}"{default} />',
        f'\t\t<shortdesc lang="en">{_xml_text(spec.description)}</shortdesc>',
        "\t</parameter>",
    ]


def metadata(program: str, optstring: str) -> str:
    """The fence-agent metadata XML (valid against fence-agents' metadata.rng)."""
    lines = [
        '<?xml version="1.0" ?>',
        f'<resource-agent name="{program}" shortdesc="Fence agent for virtual machines">',
        f"<longdesc>{program} is an I/O Fencing agent which can be used with virtual machines.",
        "",
        f"{_NOTE}</longdesc>",
        "<vendor-url>https://libvirt.org</vendor-url>",
        "<parameters>",
    ]
    for spec in table.letters(optstring):
        if spec.name:
            lines += _parameter(spec, f"-{spec.letter}")
    for spec in table.OPTIONS:
        if spec.compat:
            lines += _parameter(spec, "")
    lines += ["</parameters>", "<actions>"]
    lines += [f'\t<action name="{action}" />' for action in _ACTIONS]
    lines += ["</actions>", "</resource-agent>"]
    return "\n".join(lines) + "\n"


def _show(value: str | None) -> str:
    return "(null)" if value is None else value


def dump(args: AgentArgs) -> str:
    """The ``-d`` dump of every setting (C also prints the struct's address; we cannot)."""
    rows = [
        ("domain", _show(args.domain)),
        ("op", args.op),
        ("mode", args.mode),
        ("debug", args.debug),
        ("timeout", args.timeout),
        ("delay", args.delay),
        ("retr_time", args.retrans),
        ("flags", args.flags),
        ("net.addr", _show(args.mcast_address)),
        ("net.ipaddr", _show(args.ipaddr)),
        ("net.cid", args.cid),
        ("net.key_file", args.key_file),
        ("net.port", args.port),
        ("net.hash", args.hash),
        ("net.auth", args.auth),
        ("net.family", args.family),
        ("net.ifindex", args.ifindex),
        ("serial.device", _show(args.serial_device)),
        ("serial.speed", args.serial_params),
        ("serial.address", args.channel_address),
    ]
    body = "".join(f"  args->{name} = {value}\n" for name, value in rows)
    return f"-- args --\n{body}-- end args --"
