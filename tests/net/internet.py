"""A small Internet in network namespaces: two homes behind NATs and a public segment.

::

    home1 (10.1.0.2) ── router1 NAT (198.51.100.2) ──┐
                                                     public (203.0.113.10: server, coturn)
    home2 (10.2.0.2) ── router2 NAT (198.51.100.6) ──┘

Every namespace name starts with ``hn<pid>x`` plus random hex, so parallel runs
never collide, and a run that died without cleaning up is swept by the next one
(its pid is gone). The public namespace routes between the two routers, as the
Internet does, but knows no private address: a home reaches the other only
through the other's NAT, which lets in nothing it did not see leave (nftables
``masquerade``: conntrack). With ``nat=False`` the routers forward plainly and
the public side routes both home subnets: the same links, a direct path (the
benchmarks' baseline).

Profiles are nftables rules in a router (:meth:`Internet.block_udp`,
:meth:`Internet.impair`, :meth:`Internet.burst_loss`): the kernel here has no
``sch_netem``, but nftables' ``numgen random`` drops (with a conntrack mark
for bursts) and ``tc tbf`` caps a rate.

Needs root and ``ip netns`` (``iproute2``) and ``nft`` (Debian ``nftables``);
:func:`unavailable` says why not, for a skip. Only addresses inside these
namespaces are ever used.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PUBLIC_IP = "203.0.113.10"  # TEST-NET-3: the rendezvous server and coturn
_WAN = {1: ("198.51.100.1", "198.51.100.2"), 2: ("198.51.100.5", "198.51.100.6")}  # pub, router
_PREFIX = "hn"


def home_ip(i: int) -> str:
    return f"10.{i}.0.2"


def router_wan_ip(i: int) -> str:
    return _WAN[i][1]


def _run(*cmd: str, input: str | None = None) -> None:
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")


class NetError(RuntimeError):
    """A namespace command failed."""


def unavailable() -> str | None:
    """Why namespaces cannot be built here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI and the dev machines run tests as root)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package}; dev.sh TEST_PKGS)"
    probe = f"{_PREFIX}{os.getpid()}xprobe"
    try:
        _run("ip", "netns", "add", probe)
        _run("ip", "netns", "exec", probe, "nft", "list", "ruleset")
    except (NetError, OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns / nft do not work here: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def sweep_stale() -> None:
    """Delete namespaces left by runs whose process is gone (killed mid-test)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(_PREFIX) or "x" not in name:
            continue
        pid = name[len(_PREFIX) :].split("x", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@dataclass
class Internet:
    """The namespaces of one run; ``ns["pub"]``, ``ns["r1"]``, ``ns["h1"]``…"""

    tag: str
    nat: bool = True
    ns: dict[str, str] = field(default_factory=dict)

    def exec_prefix(self, where: str) -> list[str]:
        """Prefix a command with this to run it inside namespace ``where``."""
        return ["ip", "netns", "exec", self.ns[where]]

    def sh(self, where: str, *cmd: str) -> None:
        _run(*self.exec_prefix(where), *cmd)

    def nft(self, where: str, rules: str) -> None:
        _run(*self.exec_prefix(where), "nft", "-f", "-", input=rules)

    # ------------------------------------------------------------ build
    def build(self) -> None:
        for name in ("pub", "r1", "r2", "h1", "h2"):
            full = f"{self.tag}{name}"
            _run("ip", "netns", "add", full)
            self.ns[name] = full
            self._sysctls(name)
            _run("ip", "-n", full, "link", "set", "lo", "up")
        _run("ip", "-n", self.ns["pub"], "addr", "add", f"{PUBLIC_IP}/32", "dev", "lo")
        for i in (1, 2):
            pub_ip, wan_ip = _WAN[i]
            router, home = self.ns[f"r{i}"], self.ns[f"h{i}"]
            self._link("pub", f"r{i}", f"r{i}", "wan")
            _run("ip", "-n", self.ns["pub"], "addr", "add", f"{pub_ip}/30", "dev", f"r{i}")
            _run("ip", "-n", router, "addr", "add", f"{wan_ip}/30", "dev", "wan")
            _run("ip", "-n", router, "route", "add", "default", "via", pub_ip)
            self._link(f"r{i}", f"h{i}", "lan", "eth0")
            _run("ip", "-n", router, "addr", "add", f"10.{i}.0.1/24", "dev", "lan")
            _run("ip", "-n", home, "addr", "add", f"{home_ip(i)}/24", "dev", "eth0")
            _run("ip", "-n", home, "route", "add", "default", "via", f"10.{i}.0.1")
            self._nat_home(i, self.nat)

    def _nat_home(self, i: int, on: bool) -> None:
        if on:
            self.nft(
                f"r{i}",
                "table ip nat {\n"
                " chain post { type nat hook postrouting priority srcnat;\n"
                '  oifname "wan" masquerade\n }\n'
                "}\n",
            )
        else:
            _run("ip", "-n", self.ns["pub"], "route", "add", f"10.{i}.0.0/24", "via", _WAN[i][1])

    def set_nat(self, on: bool) -> None:
        """Put both homes behind their NATs (``True``) or route them plainly, the
        public side knowing both home subnets (``False``: a direct path on the same
        links, as ``nat=False`` builds it). Flows already tracked keep their mapping;
        new ones (a new call's sockets) see the new setting."""
        if on == self.nat:
            return
        for i in (1, 2):
            if on:
                _run("ip", "-n", self.ns["pub"], "route", "del", f"10.{i}.0.0/24")
            else:
                self.sh(f"r{i}", "nft", "delete", "table", "ip", "nat")
            self._nat_home(i, on)
        self.nat = on

    def _sysctls(self, name: str) -> None:
        # No IPv6 at all (no link-local candidates); routers and the public side forward.
        values = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        if not name.startswith("h"):
            values.append("net.ipv4.ip_forward=1")
        self.sh(name, "sysctl", "-q", "-w", *values)

    def _link(self, a: str, b: str, a_if: str, b_if: str) -> None:
        _run("ip", "link", "add", a_if, "netns", self.ns[a], "type", "veth",
             "peer", "name", b_if, "netns", self.ns[b])  # fmt: skip
        _run("ip", "-n", self.ns[a], "link", "set", a_if, "up")
        _run("ip", "-n", self.ns[b], "link", "set", b_if, "up")

    # ------------------------------------------------------------ profiles
    def block_udp(self, home: int, *, tcp_only_to: int | tuple[int, ...] | None = None) -> None:
        """Home ``home``'s router drops every UDP packet to or from the home (a
        corporate network; no DNS here, so nothing is spared); with
        ``tcp_only_to`` it also lets TCP out to that port (or those ports) only
        (443: TLS only). The rules count what they drop (:meth:`dropped`)."""
        ports = (tcp_only_to,) if isinstance(tcp_only_to, int) else tcp_only_to or ()
        allowed = ", ".join(str(int(port)) for port in ports)
        tcp = f'  iifname "lan" tcp dport != {{ {allowed} }} counter drop\n' if ports else ""
        self.nft(
            f"r{home}",
            "table inet corp {\n"
            " chain through { type filter hook forward priority filter;\n"
            f"  meta l4proto udp counter drop\n{tcp} }}\n"
            "}\n",
        )

    def move_home(self, home: int, host: int) -> str:
        """Home ``home`` gets another address (``10.{home}.0.{host}``) in place of
        the one it has: what a laptop sees when its network changes. Sockets bound
        to the old address are left with nothing; the NAT maps the new one afresh.
        Returns the new address; :meth:`move_home` with 2 puts it back."""
        ns, new = self.ns[f"h{home}"], f"10.{home}.0.{host}"
        batch = (f"address flush dev eth0\naddress add {new}/24 dev eth0\n"
                 f"route replace default via 10.{home}.0.1\n")  # fmt: skip
        _run("ip", "-n", ns, "-batch", "-", input=batch)
        return new

    def unblock(self, home: int) -> None:
        """Undo :meth:`block_udp`."""
        self.sh(f"r{home}", "nft", "delete", "table", "inet", "corp")

    def dropped(self, home: int) -> int:
        """Packets the corporate rules of home ``home`` dropped so far."""
        listing = [*self.exec_prefix(f"r{home}"), "nft", "list", "table", "inet", "corp"]
        out = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def impair(self, home: int, *, loss_percent: int = 0, rate_kbit: int = 0) -> None:
        """Random loss both ways through home ``home``'s router (nftables
        ``numgen random``), and/or a rate cap on its uplink (``tc tbf``)."""
        if loss_percent:
            self.nft(
                f"r{home}",
                "table inet impair {\n"
                " chain through { type filter hook forward priority filter;\n"
                f"  numgen random mod 100 lt {int(loss_percent)} counter drop\n }}\n"
                "}\n",
            )
        if rate_kbit:
            rate = f"{int(rate_kbit)}kbit"
            self.sh(f"r{home}", "tc", "qdisc", "replace", "dev", "wan", "root", "tbf",
                    "rate", rate, "burst", "4kb", "latency", "100ms")  # fmt: skip

    def burst_loss(self, home: int, *, loss_percent: float, mean_burst: float) -> None:
        """Bursty loss through home ``home``'s router, both ways: a two-state
        (Gilbert) model kept in each flow's conntrack mark. A packet of a flow in
        the good state turns it bad with probability p (it is dropped); in the bad
        state every packet is dropped, and each turns it good again with probability
        q = 1/``mean_burst`` (that packet passes). Long-run loss
        p / (p + q) = ``loss_percent``; bursts average ``mean_burst`` packets."""
        q = 1.0 / mean_burst
        loss = loss_percent / 100.0
        p = q * loss / (1.0 - loss)
        enter, leave = round(p * 10000), round(q * 10000)
        self.nft(
            f"r{home}",
            "table inet impair {\n"
            " chain through { type filter hook forward priority filter;\n"
            f"  ct mark 0 numgen random mod 10000 lt {enter} ct mark set 1 counter drop\n"
            f"  ct mark 1 numgen random mod 10000 lt {leave} ct mark set 0 accept\n"
            "  ct mark 1 counter drop\n }\n"
            "}\n",
        )

    def dropped_by_impairment(self, home: int) -> int:
        """Packets the loss rules of home ``home`` dropped so far (0: none set)."""
        listing = [*self.exec_prefix(f"r{home}"), "nft", "list", "table", "inet", "impair"]
        out = subprocess.run(listing, capture_output=True, text=True, check=False).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def clear_impairments(self, home: int) -> None:
        """Undo :meth:`impair` and :meth:`burst_loss` (whatever of them is set)."""
        subprocess.run([*self.exec_prefix(f"r{home}"), "nft", "delete", "table", "inet", "impair"],
                       capture_output=True, check=False)  # fmt: skip
        subprocess.run([*self.exec_prefix(f"r{home}"), "tc", "qdisc", "del", "dev", "wan", "root"],
                       capture_output=True, check=False)  # fmt: skip

    # ------------------------------------------------------------ teardown
    def destroy(self) -> None:
        for full in self.ns.values():
            subprocess.run(["ip", "netns", "del", full], capture_output=True, check=False)
        self.ns.clear()


@contextlib.contextmanager
def internet(*, nat: bool = True) -> Iterator[Internet]:
    """Build the namespaces, yield them, and always delete them."""
    sweep_stale()
    net = Internet(tag=f"{_PREFIX}{os.getpid()}x{secrets.token_hex(3)}", nat=nat)
    try:
        net.build()
        yield net
    finally:
        net.destroy()


def in_ns(net: Internet, where: str, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run inside namespace ``where``."""
    return [*net.exec_prefix(where), *cmd]
