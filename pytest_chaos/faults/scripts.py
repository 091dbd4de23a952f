"""The shell scripts that ephemeral containers run to inject and undo network and stress faults.

Pure: each function returns the text of a POSIX ``sh`` script (or an argv), built from checked
values only, so the same record always gives the same script and no user text ever reaches a
shell unquoted. The scripts need what the toolbox image has: ``sh``, ``iptables``/``ip6tables``,
``ss`` and ``tc`` (iproute2), ``stress-ng``, ``pgrep``/``pkill`` (procps), ``sed``, ``grep``,
and pytest-chaos's own memory holder ``pytest-chaos-hold`` and NFQUEUE delayer
``pytest-chaos-delay``.

Conventions shared by every script:

* It prints what it does, and on success writes one summary line to the container's termination
  message (``/dev/termination-log``, overridable with ``$PYTEST_CHAOS_REPORT`` for tests), so
  the plugin reads the outcome from the pod's status: no ``exec``, no log access needed.
* It exits 0 on success; a failure exits non-zero and the container's
  ``terminationMessagePolicy: FallbackToLogsOnError`` puts the last log lines in the status.
* Undo scripts are idempotent: undoing what is already undone exits 0.

Network faults live in the pod's network namespace (rules, qdiscs) and stay there after the
injecting container exits; a dedicated iptables chain per fault, ``PYTEST-CHAOS-<tag>``, holds
every rule, so undo removes exactly those rules and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

#: Prefix of the iptables chain of a fault; with a 12-character tag, 25 of the 28 allowed.
CHAIN_PREFIX = "PYTEST-CHAOS-"
#: iptables refuses chain names longer than this (XT_EXTENSION_MAXNAMELEN - 1).
MAX_CHAIN = 28
#: The stress process's marker in its command line: ``pytest-chaos-stress-<tag>``.
STRESS_MARKER_PREFIX = "pytest-chaos-stress-"
#: The toolbox's memory holder (tools/images/hold), found on the container's PATH.
HOLD_COMMAND = "pytest-chaos-hold"
#: What the latency script prints when the node's kernel has no netem qdisc (then it delays with
#: the NFQUEUE delayer).
NETEM_UNAVAILABLE = "NETEM-UNAVAILABLE"
#: What the latency scripts report when neither netem nor NFQUEUE can delay (then: a skip).
LATENCY_UNAVAILABLE = "LATENCY-UNAVAILABLE"
#: Exit code of the latency scripts when nothing can delay (the verb turns it into a skip).
NETEM_UNAVAILABLE_EXIT = 3
#: The toolbox's NFQUEUE delayer (tools/images/delay), found on the container's PATH.
DELAY_COMMAND = "pytest-chaos-delay"
#: Protocols a port rule can name (iptables ``-p``).
PROTOCOLS = ("tcp", "udp", "sctp")

_TAG = re.compile(r"^[0-9a-f]{4,15}$")

_PRELUDE = """\
set -u
report() {
  echo "pytest-chaos: $1"
  echo "$1" > "${PYTEST_CHAOS_REPORT:-/dev/termination-log}" 2>/dev/null || true
}
fail() {
  echo "pytest-chaos: $1" >&2
  exit 1
}
"""


@dataclass(frozen=True, slots=True)
class Peer:
    """What a network fault is about: addresses (a CIDR) and, optionally, ports.

    Attributes:
        cidr: ``10.96.0.10/32``, ``10.244.0.0/16``, ``fd00::1/128``.
        ports: ``(protocol, port)`` pairs, e.g. ``(("tcp", 4222),)``; empty = every port and
            protocol.
    """

    cidr: str
    ports: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        network = ipaddress.ip_network(self.cidr, strict=False)
        object.__setattr__(self, "cidr", str(network))
        for protocol, port in self.ports:
            if protocol not in PROTOCOLS or not 1 <= int(port) <= 65535:
                raise ValueError(f"bad port {protocol}/{port} for {self.cidr}")

    @property
    def version(self) -> int:
        """4 or 6."""
        return ipaddress.ip_network(self.cidr).version

    @property
    def address(self) -> str:
        """The address alone when the CIDR is one host (``10.0.0.1``), else the CIDR."""
        network = ipaddress.ip_network(self.cidr)
        host_bits = 32 if network.version == 4 else 128
        return str(network.network_address) if network.prefixlen == host_bits else self.cidr


def check_tag(tag: str) -> str:
    """A fault's tag: lowercase hex, 4 to 15 characters (names chains, containers, markers)."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"tag={tag!r} must be 4 to 15 lowercase hex digits")
    return tag


def chain_name(tag: str) -> str:
    """The iptables chain of a fault: ``PYTEST-CHAOS-<tag>`` (at most 28 characters)."""
    name = CHAIN_PREFIX + check_tag(tag)
    assert len(name) <= MAX_CHAIN
    return name


def qdisc_handle(tag: str) -> str:
    """The netem qdisc's handle for a fault, e.g. ``7a3c:`` (a 16-bit major, never 0/ffff)."""
    major = int(check_tag(tag)[:4], 16) % 0xFFFE + 1
    return f"{major:x}:"


def stress_marker(tag: str) -> str:
    """The word in the stress process's command line that undo looks for."""
    return STRESS_MARKER_PREFIX + check_tag(tag)


def _tool(version: int) -> str:
    return "iptables" if version == 4 else "ip6tables"


def _versions(peers: Sequence[Peer]) -> list[int]:
    return sorted({p.version for p in peers}) or [4]


def cut_rules(tag: str, peers: Sequence[Peer]) -> list[str]:
    """The iptables commands that fill a cut's chain (one REJECT per peer, port and direction).

    Outgoing packets to a peer (``-d``, destination port) and incoming packets from it (``-s``,
    source port: the replies of our connections) are rejected; TCP with a reset, so both ends
    learn at once, anything else with ICMP port-unreachable. TCP resets themselves pass, so the
    reset the pod's own REJECT sends reaches the pod's socket (a refused connect, not a hang).
    """
    chain = chain_name(tag)
    # Our own resets must pass: REJECT in OUTPUT sends the RST to the local socket through
    # OUTPUT and INPUT again, where the source rules below would swallow it.
    rules = [
        f"{_tool(v)} -w -A {chain} -p tcp --tcp-flags RST RST -j RETURN" for v in _versions(peers)
    ]
    for peer in peers:
        tool = _tool(peer.version)
        head = f"{tool} -w -A {chain}"
        for to, frm in (("-d", "--dport"), ("-s", "--sport")):
            if not peer.ports:
                rules.append(f"{head} {to} {peer.cidr} -p tcp -j REJECT --reject-with tcp-reset")
                rules.append(f"{head} {to} {peer.cidr} -j REJECT")
                continue
            for protocol, port in peer.ports:
                target = "REJECT --reject-with tcp-reset" if protocol == "tcp" else "REJECT"
                rules.append(f"{head} {to} {peer.cidr} -p {protocol} {frm} {port} -j {target}")
    return rules


def loss_rules(tag: str, percent: float, peers: Sequence[Peer]) -> list[str]:
    """The iptables commands that drop percent of the pod's outgoing packets (to peers, or all).

    ``-m statistic --mode random`` needs no netem. Without peers, loopback traffic is spared
    (the pod talking to itself is not the network).
    """
    chain = chain_name(tag)
    probability = f"{percent / 100:.5f}"
    drop = f"-m statistic --mode random --probability {probability} -j DROP"
    if not peers:
        return [f"iptables -w -A {chain} -o lo -j RETURN", f"iptables -w -A {chain} {drop}"]
    rules: list[str] = []
    for peer in peers:
        head = f"{_tool(peer.version)} -w -A {chain} -d {peer.cidr}"
        if not peer.ports:
            rules.append(f"{head} {drop}")
        for protocol, port in peer.ports:
            rules.append(f"{head} -p {protocol} --dport {port} {drop}")
    return rules


def _chain_setup(chain: str, versions: Sequence[int]) -> str:
    lines = []
    for version in versions:
        tool = _tool(version)
        lines.append(
            f"{tool} -w -N {chain} 2>/dev/null || {tool} -w -F {chain} || "
            f'fail "cannot create chain {chain} with {tool} (the container needs NET_ADMIN)"'
        )
    return "\n".join(lines)


def _chain_hooks(chain: str, versions: Sequence[int], hooks: Sequence[str]) -> str:
    lines = [
        f"{_tool(version)} -w -C {hook} -j {chain} 2>/dev/null || "
        f"{_tool(version)} -w -I {hook} 1 -j {chain} || "
        f'fail "cannot jump from {hook} to {chain}"'
        for version in versions
        for hook in hooks
    ]
    return "\n".join(lines)


def _guarded(rules: Sequence[str]) -> str:
    return "\n".join(f'{rule} || fail "rule refused: {rule}"' for rule in rules)


def _ss_filter(peer: Peer, port: int | None) -> str:
    address = peer.address
    if peer.version == 6:
        address = f"[{address}]" if "/" not in address else address
    text = f"dst {address}"
    return f"{text} dport = :{port}" if port is not None else text


def cut_script(tag: str, peers: Sequence[Peer]) -> str:
    """Reject traffic with peers from now on, then close the connections already open.

    Rules go into the fault's chain, jumped to from OUTPUT and INPUT; ``ss -K`` then destroys
    the pod's sockets to each peer (kernel ``INET_DIAG_DESTROY``), so a client holding one
    long-lived connection (NATS, keep-alive HTTP) notices now, not at its next timeout. The
    report says how many connections were closed and how many are left (``left`` > 0 means the
    kernel cannot destroy sockets; the rules still reset them at their next packet).
    """
    if not peers:
        raise ValueError("a cut needs at least one peer")
    chain = chain_name(tag)
    versions = _versions(peers)
    rules = cut_rules(tag, peers)
    closing = []
    for peer in peers:
        tcp_ports = sorted({port for protocol, port in peer.ports if protocol == "tcp"})
        if peer.ports and not tcp_ports:
            continue  # nothing connection-oriented to close
        each_port: list[int | None] = [*tcp_ports] or [None]
        for port in each_port:
            where = _ss_filter(peer, port)
            closing.append(
                f"closed=$((closed + $(ss -HK -t {where} 2>/dev/null | wc -l)))\n"
                f"left=$((left + $(ss -Ht state established {where} 2>/dev/null | wc -l)))"
            )
    summary = f"cut {chain}: {len(rules)} rules; closed=$closed left=$left"
    return "\n".join(
        [
            _PRELUDE,
            _chain_setup(chain, versions),
            _guarded(rules),
            _chain_hooks(chain, versions, ("OUTPUT", "INPUT")),
            "closed=0",
            "left=0",
            *closing,
            f'report "{summary}"',
            "exit 0",
            "",
        ]
    )


def loss_script(tag: str, percent: float, peers: Sequence[Peer]) -> str:
    """Drop percent of the pod's outgoing packets (to peers, or to everything but loopback)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent={percent!r} must be in (0, 100]")
    chain = chain_name(tag)
    versions = _versions(peers)
    rules = loss_rules(tag, percent, peers)
    return "\n".join(
        [
            _PRELUDE,
            _chain_setup(chain, versions),
            _guarded(rules),
            _chain_hooks(chain, versions, ("OUTPUT",)),
            f'report "loss {chain}: {len(rules)} rules; {percent:g}% of packets dropped"',
            "exit 0",
            "",
        ]
    )


def iptables_undo_script(tag: str) -> str:
    """Remove the fault's jumps and chain (IPv4 and IPv6); exit 0 when already gone."""
    chain = chain_name(tag)
    lines = [_PRELUDE, "removed=0"]
    for tool in ("iptables", "ip6tables"):
        lines += [
            f"if command -v {tool} >/dev/null 2>&1; then",
            "  for hook in OUTPUT INPUT; do",
            f'    while {tool} -w -D "$hook" -j {chain} 2>/dev/null; do :; done',
            "  done",
            f"  if {tool} -w -n -L {chain} >/dev/null 2>&1; then",
            f'    {tool} -w -F {chain} || fail "cannot flush {chain} ({tool})"',
            f'    {tool} -w -X {chain} || fail "cannot delete {chain} ({tool})"',
            "    removed=$((removed + 1))",
            "  fi",
            "fi",
        ]
    lines += [
        f'if [ "$removed" -gt 0 ]; then report "removed {chain}"; '
        f'else report "{chain} was already gone"; fi',
        "exit 0",
        "",
    ]
    return "\n".join(lines)


def _milliseconds(value: float) -> str:
    return f"{value:g}ms"


def latency_queue(tag: str) -> int:
    """The NFQUEUE number of a fault's delayer (a 16-bit number taken from its tag)."""
    return int(check_tag(tag)[:4], 16)


def _go_duration(milliseconds: float) -> str:
    """A duration Go's flag package reads, to the microsecond: ``300000us``."""
    return f"{round(milliseconds * 1000)}us"


def _delay_command(tag: str, verb: str, *options: str) -> str:
    return " ".join([DELAY_COMMAND, verb, "-tag", check_tag(tag), *options])


def latency_script(tag: str, delay_ms: float, jitter_ms: float = 0) -> str:
    """Delay every packet the pod sends: netem where the kernel has it, else the NFQUEUE delayer.

    netem: a qdisc with the fault's handle on the default-route interface; the script reports
    ``latency netem ...`` and exits 0. Where the kernel has no ``sch_netem`` (tc says "Specified
    qdisc kind is unknown", or "No such file or directory" on older iproute2), or the image has
    no ``tc``, it becomes the delayer (``exec pytest-chaos-delay serve``): it binds the fault's
    NFQUEUE and runs until the undo stops it; :func:`latency_ready_script`, in a second
    container, then sends the pod's packets to it. A delayer that cannot bind the queue reports
    ``LATENCY-UNAVAILABLE`` and exits 3, which the verb turns into a skip.
    """
    if delay_ms <= 0 or jitter_ms < 0:
        raise ValueError("delay must be > 0 and jitter >= 0")
    handle = qdisc_handle(tag)
    netem = f"netem delay {_milliseconds(delay_ms)}"
    if jitter_ms:
        netem += f" {_milliseconds(jitter_ms)}"
    serve = _delay_command(
        tag,
        "serve",
        f"-queue {latency_queue(tag)}",
        f"-delay {_go_duration(delay_ms)}",
        f"-jitter {_go_duration(jitter_ms)}",
    )
    return "\n".join(
        [
            _PRELUDE,
            "dev=$(ip -o route show default 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'"
            " | head -n 1)",
            "dev=${dev:-eth0}",
            'out="tc is not in this image"',
            "if command -v tc >/dev/null 2>&1; then",
            f'  if out=$(tc qdisc add dev "$dev" root handle {handle} {netem} 2>&1); then',
            f'    report "latency netem {handle} on $dev: {netem}"',
            "    exit 0",
            "  fi",
            '  case "$out" in',
            '    *"kind is unknown"*|*"No such file or directory"*|*"nknown qdisc"*) ;;',
            '    *) fail "tc refused the netem qdisc on $dev: $out" ;;',
            "  esac",
            "fi",
            f'echo "pytest-chaos: {NETEM_UNAVAILABLE} ($out): the NFQUEUE delayer delays instead"',
            f"exec {serve}",
            "",
        ]
    )


def latency_rules(tag: str, version: int = 4) -> list[str]:
    """The rules of the delayer's chain (table ``mangle``): every packet but loopback's to it.

    ``--queue-bypass``: while no delayer listens on the queue, packets pass undelayed.
    """
    chain = chain_name(tag)
    tool = f"{_tool(version)} -w -t mangle"
    return [
        f"{tool} -A {chain} -o lo -j RETURN",
        f"{tool} -A {chain} -j NFQUEUE --queue-num {latency_queue(tag)} --queue-bypass",
    ]


def latency_ready_script(tag: str) -> str:
    """Once the delayer listens, send the pod's outgoing packets to it; report that it runs.

    Runs in a second ephemeral container when the first one became the delayer. It refuses a
    pod that already has another latency fault's chain (the first queue would take every
    packet). Rules: the fault's chain in ``mangle``, jumped to first from ``OUTPUT``, for IPv4
    and, where the pod has IPv6, IPv6. An NFQUEUE target the kernel refuses is reported as
    ``LATENCY-UNAVAILABLE`` with exit 3 (a skip).
    """
    chain = chain_name(tag)
    lines = [
        _PRELUDE,
        f"other=$(iptables -w -t mangle -S OUTPUT 2>/dev/null | grep -o '{CHAIN_PREFIX}[0-9a-f]*'"
        f" | grep -v '{chain}' | head -n 1)",
        'if [ -n "$other" ]; then',
        '  fail "this pod already has a latency fault ($other): revert it first"',
        "fi",
        f'ready=$({_delay_command(tag, "ready")}) || fail "the delayer did not answer: $ready"',
    ]
    for version in (4, 6):
        tool = f"{_tool(version)} -w -t mangle"
        guard = "" if version == 4 else "[ -e /proc/net/if_inet6 ] && "
        rules = latency_rules(tag, version)
        lines += [
            f"if {guard}command -v {_tool(version)} >/dev/null 2>&1; then",
            f"  {tool} -N {chain} 2>/dev/null || {tool} -F {chain} || "
            f'fail "cannot create chain {chain} in mangle with {_tool(version)}"',
            f'  {rules[0]} || fail "rule refused: {rules[0]}"',
            f"  if ! out=$({rules[1]} 2>&1); then",
            f'    report "{LATENCY_UNAVAILABLE}: the kernel refused NFQUEUE: $out"',
            f"    exit {NETEM_UNAVAILABLE_EXIT}",
            "  fi",
            f"  {tool} -C OUTPUT -j {chain} 2>/dev/null || {tool} -I OUTPUT 1 -j {chain} || "
            f'fail "cannot jump from OUTPUT to {chain} in mangle"',
            "fi",
        ]
    lines += ['report "$ready"', "exit 0", ""]
    return "\n".join(lines)


def latency_undo_script(tag: str) -> str:
    """Remove whatever the latency fault added; exit 0 when it is already gone.

    Its netem qdisc (from whichever interface has it); its chain in ``mangle`` and the jumps to
    it (IPv4 and IPv6), so no new packet is queued; then the delayer is stopped (it lets the
    packets it still holds go at once). Each part that is absent is skipped.
    """
    handle = qdisc_handle(tag)
    chain = chain_name(tag)
    lines = [
        _PRELUDE,
        "removed=",
        "if command -v tc >/dev/null 2>&1; then",
        "  for dev in $(ls /sys/class/net); do",
        f'    if tc qdisc show dev "$dev" root 2>/dev/null | grep -q "netem {handle} "; then',
        '      tc qdisc del dev "$dev" root || fail "cannot remove the netem qdisc from $dev"',
        f'      removed="$removed netem {handle} on $dev,"',
        "    fi",
        "  done",
        "fi",
    ]
    for tool in ("iptables", "ip6tables"):
        table = f"{tool} -w -t mangle"
        lines += [
            f"if command -v {tool} >/dev/null 2>&1; then",
            f"  while {table} -D OUTPUT -j {chain} 2>/dev/null; do :; done",
            f"  if {table} -n -L {chain} >/dev/null 2>&1; then",
            f'    {table} -F {chain} || fail "cannot flush {chain} ({tool} mangle)"',
            f'    {table} -X {chain} || fail "cannot delete {chain} ({tool} mangle)"',
            f'    removed="$removed {chain} ({tool}),"',
            "  fi",
            "fi",
        ]
    lines += [
        f"if command -v {DELAY_COMMAND} >/dev/null 2>&1; then",
        f'  stopped=$({_delay_command(tag, "stop")}) || fail "$stopped"',
        '  case "$stopped" in *\'was not running\'*) ;; *) removed="$removed $stopped," ;; esac',
        "fi",
        f'if [ -n "$removed" ]; then report "removed:${{removed%,}}"; '
        f'else report "latency {tag} was already gone"; fi',
        "exit 0",
        "",
    ]
    return "\n".join(lines)


def stress_ng_args(*, cpu_workers: int, cpu_load: int, timeout_seconds: int) -> list[str]:
    """stress-ng's arguments: CPU workers at a load percent, ending by themselves.

    ``--timeout`` ends the stress even if nobody undoes it.
    """
    if timeout_seconds < 1:
        raise ValueError("timeout_seconds must be >= 1")
    if cpu_workers < 1 or not 1 <= cpu_load <= 100:
        raise ValueError("cpu_workers must be >= 1 and cpu_load 1..100")
    # stress-ng needs a writable directory; the unprivileged user may not write the cwd (/).
    writable = "/tmp"  # noqa: S108 - inside the container, and stress-ng only probes it
    return [
        "stress-ng", "--cpu", str(cpu_workers), "--cpu-load", str(cpu_load),
        "--timeout", f"{timeout_seconds}s", "--temp-path", writable, "--metrics-brief",
    ]  # fmt: skip


def hold_args(*, memory_bytes: int, timeout_seconds: int) -> list[str]:
    """The memory holder's arguments (``pytest-chaos-hold``, in the toolbox image).

    It allocates the bytes in a memory file it never maps: they are charged to its memory
    cgroup but are not in its resident set, and it keeps the oom_score_adj it was given, so an
    OOM kill falls on whichever process the kernel would pick anyway (stress-ng's ``--vm``
    workers raise their own oom_score_adj to the maximum and are always the victims). It ends
    by itself after timeout_seconds, and its memory is freed however it ends.
    """
    if timeout_seconds < 1 or memory_bytes < 1:
        raise ValueError("memory_bytes and timeout_seconds must be >= 1")
    return [HOLD_COMMAND, str(memory_bytes), str(timeout_seconds)]


def stress_command(tag: str, commands: Sequence[Sequence[str]]) -> list[str]:
    """The stressing container's argv: a shell named after the marker runs the commands.

    stress-ng renames its workers (``stress-ng-cpu [run]``), so the marker rides on the parent
    shell (``sh -c SCRIPT pytest-chaos-stress-<tag>`` sets its ``$0``); undo kills that shell's
    whole process tree. The shell starts every command in the background, forwards SIGTERM to
    them, reaps them all, and reports the last non-zero exit status (0 if none).
    """
    if not commands:
        raise ValueError("nothing to stress: give at least one command")
    quoted = [" ".join(shlex.quote(a) for a in command) for command in commands]
    lines = [
        _PRELUDE,
        f'echo "pytest-chaos: stress {check_tag(tag)}: {"; ".join(quoted)}"',
        "pids=",
    ]
    for each in quoted:
        lines += [f"{each} &", 'pids="$pids $!"']
    lines += [
        "trap 'kill -TERM $pids 2>/dev/null' TERM INT",
        "rc=0",
        "for p in $pids; do",
        '  wait "$p"',
        "  r=$?",
        # A trapped signal interrupts the first wait; the second reaps the command.
        '  wait "$p" 2>/dev/null && r=$?',
        '  [ "$r" -ne 0 ] && rc=$r',
        "done",
        f'report "stress {tag} ended (exit $rc)"',
        'exit "$rc"',
        "",
    ]
    return ["sh", "-c", "\n".join(lines), stress_marker(tag)]


def stress_undo_script(tag: str) -> str:
    """Stop the fault's stress processes (found by marker, in the shared PID namespace).

    The pattern is written ``pytest-chaos-stres[s]-<tag>`` so that this script's own command
    line never matches it. Every process of each marked tree gets SIGTERM, then SIGKILL after
    5 s; exits 0 whether or not anything was still running.
    """
    marker = stress_marker(tag)
    pattern = marker.replace("stress-", "stres[s]-", 1)
    return "\n".join(
        [
            _PRELUDE,
            "tree() {",
            '  for c in $(pgrep -P "$1"); do tree "$c"; done',
            '  echo "$1"',
            "}",
            "alive() {",
            '  [ -e "/proc/$1" ] && ! grep -q \'^State:[[:space:]]*Z\' "/proc/$1/status"'
            " 2>/dev/null",
            "}",
            "pids=",
            f'for p in $(pgrep -f \'{pattern}\'); do pids="$pids $(tree "$p")"; done',
            'if [ -z "$pids" ]; then',
            f'  report "stress {tag}: nothing running"',
            "  exit 0",
            "fi",
            "kill -TERM $pids 2>/dev/null",
            "i=0",
            "while [ $i -lt 50 ]; do",
            "  left=",
            '  for p in $pids; do alive "$p" && left="$left $p"; done',
            '  [ -z "$left" ] && break',
            "  sleep 0.1",
            "  i=$((i + 1))",
            "done",
            'if [ -n "$left" ]; then kill -KILL $left 2>/dev/null; fi',
            f'report "stress {tag}: stopped$pids"',
            "exit 0",
            "",
        ]
    )


def shell(script: str) -> list[str]:
    """The argv that runs a script: ``["sh", "-c", script]``."""
    return ["sh", "-c", script]
