"""How the generated C spells values that come from the model: identifiers, comments,
float literals. The project files (project.py) and the per-step kernels (kernels.py)
both write such text.
"""
from __future__ import annotations

import re

import numpy as np

from mcuc.ir.tensor import cut_name


def c_name(name: str) -> str:
    """`name` as a C identifier prefix: other characters become '_', a leading digit gets
    'm_' (graph names come from model files and may be anything)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
    if ident[0].isdigit():
        ident = "m_" + ident
    return ident


COMMENT_LIMIT = 200


def c_comment(text: str, limit: int = COMMENT_LIMIT) -> str:
    """`text` (a name from a model file: anything) safe inside a /* */ comment, the one
    escaping every model string that reaches generated C goes through (kernels.py's
    `_render`, project.py). The result cannot end the comment or open a nested one
    (-Wcomment, in -Wall, rejects that), stays on one line, is printable ASCII (other
    characters as \\uXXXX, so no NUL, control character or encoding reaches the file),
    holds no "??" (a trigraph under -std=c99) and is cut to `limit` characters
    (`ir.tensor.cut_name`)."""
    chars = []
    for ch in cut_name(str(text), limit):
        if ch in "\t\r\n\v\f":
            chars.append(" ")
        elif " " <= ch <= "~":
            chars.append(ch)
        elif ord(ch) <= 0xFFFF:
            chars.append(f"\\u{ord(ch):04X}")
        else:
            chars.append(f"\\U{ord(ch):08X}")
    out = "".join(chars)
    while True:
        safe = out.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
        if safe == out:
            return out
        out = safe


def c_float(value: float) -> str:
    """A float32 value as a C literal body that reads back exactly (caller adds 'f')."""
    text = f"{float(np.float32(value)):.9g}"
    return text if any(c in text for c in ".en") else text + ".0"


def c_struct(ctype: str, name: str, fields: dict[str, object], indent: str = "", width: int = 110) -> str:
    """`static const <ctype> <name> = { .field = value, ... };` with designated initializers,
    fields packed onto lines of at most `width` columns. Values are C expressions the
    emitters build (numbers, literals, the names of arrays they declared), never text
    taken from a model: the compiler reads every field as a constant."""
    head = f"{indent}static const {ctype} {c_name(name)} = {{"
    items = [f".{c_name(field)} = {value}" for field, value in fields.items()]
    one_line = f"{head} {', '.join(items)} }};"
    if len(one_line) <= width:
        return one_line
    lines, line = [], ""
    for item in items:
        candidate = f"{line} {item}," if line else f"{indent}    {item},"
        if line and len(candidate) > width:
            lines.append(line)
            candidate = f"{indent}    {item},"
        line = candidate
    lines.append(line)
    return "\n".join([head, *lines, f"{indent}}};"])


C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
_Generic _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr false
nullptr static_assert thread_local true typeof typeof_unqual _BitInt _Decimal32
_Decimal64 _Decimal128
""".split())
"""C99, C11 and C23 keywords: a model name may not be one."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_model_name(name: str) -> str:
    """`name` if it can prefix every symbol, macro and section of a generated model
    (`<name>_invoke`, `<NAME>_ARENA_BYTES`, `.bss.<name>_arena`); else MCUCError saying why.
    It must be an ASCII C identifier that starts with a letter (a leading underscore
    would make reserved names such as `_X_ARENA_BYTES`), not a C keyword, not within
    mcuc's own `mcuc_` prefix (the runtime headers' names)."""
    from mcuc.ir.errors import MCUCError

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MCUCError(f"model name {name!r} is not a C identifier that starts with a letter "
                        "(ASCII letters, digits and '_'; a leading '_' makes names C reserves)")
    if name in C_KEYWORDS:
        raise MCUCError(f"model name {name!r} is a C keyword; choose another --name")
    if name.lower() == "mcuc" or name.lower().startswith("mcuc_"):
        raise MCUCError(f"model name {name!r} is in the mcuc_ prefix of the runtime headers; "
                        "choose another --name")
    return name


def default_model_name(stem: str) -> str:
    """The model name derived from a file name: other characters become '_', leading
    underscores and digits go, and a result that is empty, a keyword or in the mcuc_
    prefix gets a `model_` prefix (so the default is always accepted by check_model_name)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", stem).lstrip("_0123456789")
    if not ident:
        return "model"
    if ident in C_KEYWORDS or ident.lower() == "mcuc" or ident.lower().startswith("mcuc_"):
        ident = f"model_{ident}"
    return ident
