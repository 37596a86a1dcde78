"""Untrusted text made inert: one neutraliser for every output, one redactor for every secret.

Text from a snapshot (VM names, tags, error messages) and from policy or exemption files is
written by someone else. On a terminal an ANSI escape repaints the screen; in a CI log a line
holding `##vso[…]` (Azure Pipelines, anywhere in the line) or starting with `::` (GitHub
Actions) is executed as a command; a bidi override (U+202E) makes a reviewer read a different
name than the one there. The runners are looser than their documentation: GitHub's takes `::` after
any leading Unicode whitespace (.NET's TrimStart) and still runs the older `##[command]` form anywhere
in a line (actions/runner, ActionCommand.TryParse). `inert` shows all of these as visible escapes instead, and `redact`
masks bearer tokens, JWTs, SAS signatures, account keys and connection-string secrets. Every
report (console, summary.md, report.html, junit.xml) passes untrusted text through `safe`, which
does both.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from functools import lru_cache
from typing import Any, TextIO

# C0 and C1 controls (ESC starts ANSI sequences; CR overwrites a line; NEL and U+2028/9 break
# one), bidi embeddings, overrides and isolates, lone surrogates and the non-characters
# U+FFFE/U+FFFF (which no XML consumer accepts). Tab and newline are handled separately.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_NEWLINE = re.compile(r"\r?\n")
#: Azure Pipelines runs `##vso[` anywhere in a line, GitHub's runner `##[command]` anywhere too.
_VSO = re.compile(r"##(?=(?:vso)?\[)", re.IGNORECASE)
#: GitHub Actions workflow commands (`::error::`) count at the start of a line after any whitespace
#: that .NET's TrimStart removes (no-break and ideographic spaces included; Python's `\s` is that set).
_LEADING = re.compile(r"^([^\S\n]*)::", re.MULTILINE)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control, bidi and CI-command character shown as a visible escape.

    One line unless `keep_newlines` (newlines become spaces), so a newline in a VM name cannot
    start a line of its own in a CI log.
    """
    if not keep_newlines and "\n" in text:
        text = _NEWLINE.sub(" ", text)
    # Each step only where a cheap test in C says it can apply: reports pass every string through here.
    # No control, bidi or line-breaking character otherwise (a newline kept is not one of them).
    if not text.isprintable() and not text.replace("\n", "").isprintable():
        text = _UNSAFE.sub(_escape, text)
    if "##" in text:
        text = _VSO.sub("#\\\\#", text)
    if "::" in text:
        text = _LEADING.sub(lambda m: f"{m[1]}\\::", text)
    return text


_SECRETS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|((?<![A-Za-z0-9_])(?:access_?token|refresh_?token|id_?token|client_?secret|client_?assertion|password|pwd"
    r"|account_?key|shared_?access_?key|sig)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+")

#: Every match of _SECRETS contains one of these (lower-cased); text without any is left as it is.
#: Precise on purpose: a case-insensitive alternation costs about 0.25 µs per character in `re`,
#: and reports pass hundreds of thousands of strings through here.
_SECRET_WORDS = ("bearer", "eyj", "token", "secret", "client_assertion", "clientassertion", "password", "pwd",
                 "accountkey", "account_key", "sharedaccesskey", "shared_access_key",
                 "sig=", "sig:", 'sig"', "sig'", "sig ", "sig\t")


@lru_cache(maxsize=1 << 16)
def redact(text: str) -> str:
    """Text safe to log or store: bearer tokens, JWTs, SAS signatures (`sig=`), `AccountKey=`,
    `SharedAccessKey=`, passwords and other secret-looking values are masked. Cached: the same
    message repeats across thousands of findings."""

    lowered = text.lower()
    if not any(word in lowered for word in _SECRET_WORDS):
        return text  # the common case, decided by substring tests in C

    def mask(match: re.Match[str]) -> str:
        prefix = match.group(1) or match.group(2) or ""
        return f"{prefix}***"

    return _SECRETS.sub(mask, text)


def safe(text: object, *, keep_newlines: bool = False) -> str:
    """Untrusted text as every report writes it: secrets redacted, then made inert."""
    return inert(redact(str(text)), keep_newlines=keep_newlines)


class InertStream:
    """A console stream (stdout, stderr) whose every write passes `safe`, and which falls silent once
    its reader has gone (`| head`), so the command still ends with its verdict's exit code."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        return self._write(safe(text, keep_newlines=True), len(text))

    def write_command(self, text: str) -> int:
        """Write the tool's own CI commands (`::error …`, `##vso[…]`) as they are: report.ci has already
        escaped the Azure text inside them for its platform, and neutralising would disarm the command."""
        return self._write(text, len(text))

    def commands(self) -> TextIO:
        """A view of this stream whose writes are `write_command`s."""
        return _CommandView(self)  # type: ignore[return-value]

    def _write(self, text: str, size: int) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return size

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        # Point the descriptor at /dev/null, or the interpreter's last flush fails again at exit.
        self._gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _CommandView:
    """What `InertStream.commands` returns: the tool's own CI commands, written as they are."""

    def __init__(self, stream: InertStream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write_command(text)

    def flush(self) -> None:
        self._stream.flush()
