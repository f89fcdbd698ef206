"""Call quality: getStats() snapshots → one :class:`QualitySample` a second.

The same samples feed the live panel (TUI), the CLI's one-line summary and
``--json`` events, the end-of-call summary and telemetry. Core: no Textual.
"""

from hello_tui.media.aioice_mdns import defer as _defer_mdns
from hello_tui.quality.mos import bars_from_mos, estimate, mos_from_r, r_factor
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import CallQualitySummary, percentile, summarize

_defer_mdns()  # before any aiortc import here: dnspython only for an mDNS candidate

__all__ = [
    "CallQualitySummary",
    "QualitySample",
    "bars_from_mos",
    "estimate",
    "mos_from_r",
    "percentile",
    "r_factor",
    "summarize",
]
