"""Splitting a migration file into statements, and quoting the few values that cannot be bound."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_statements(sql: str) -> list[str]:
    """Split on `;` outside quotes and comments; drop comment-only pieces.

    Understands '...' and "..." and `...` quoting (with backslash escapes and doubled quotes),
    `-- line` and `/* block */` comments: enough for hand-written DDL.
    """
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            current.append(sql[i : j + 1])
            has_code = True
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            current.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            current.append(sql[i:j])
            i = j
        elif ch == ";":
            if has_code:
                statements.append("".join(current).strip())
            current, has_code = [], False
            i += 1
        else:
            current.append(ch)
            has_code = has_code or not ch.isspace()
            i += 1
    if has_code:
        statements.append("".join(current).strip())
    return statements


def identifier(name: str) -> str:
    """A backquoted identifier for names from configuration (database, user), strictly validated:
    DDL cannot bind identifiers as parameters, so anything unusual is refused rather than escaped."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def string_literal(value: str) -> str:
    """A single-quoted ClickHouse string literal (for passwords in CREATE USER, which takes no
    query parameters). Backslash and quote are escaped, so the value cannot end the literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
