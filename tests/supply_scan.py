"""Obfuscation markers in the project's own files: what hidden or smuggled code tends to look like.

Very long lines, runs of encoded data, invisible or direction-changing characters (Trojan
Source), dense escape sequences, and code that runs text at run time (`exec`/`eval`/`compile`/
`__import__`, imports of decoded names, `eval`/`new Function`/`atob` in the page script,
decode-and-pipe in shell).
The project needs none of these; an exception is allowlisted, with its reason, by the caller.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico"}
PROSE = {".md": 1000, ".html": 400}  # prose paragraphs are single lines; code keeps 100
CODE_LINE_LIMIT = 200
BLOB_RUN = re.compile(r"[A-Za-z0-9+/_-]{200,}")
BLOB_LINE = re.compile(r"""^[\s'"(,+b]*([A-Za-z0-9+/_-]{40,}={0,2})[\s'",)\\]*$""")
BLOB_LINES = 5  # this many blob-shaped lines in a row are one blob
ESCAPES = re.compile(r"(\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[0-7]{3}){32,}")
ALLOWED_CONTROLS = {"\t", "\n", "\r"}
RUN_TEXT = {"exec", "eval", "compile", "__import__"}
IMPORTERS = {"import_module", "getattr", "setattr", "pickle.loads", "dill.loads"}
CODE_LOADERS = {"marshal.loads", "marshal.load", "types.CodeType", "types.FunctionType"}
DECODERS = {
    "b64decode", "urlsafe_b64decode", "standard_b64decode", "b32decode", "b16decode",
    "a85decode", "b85decode", "decodebytes", "decompress", "unhexlify", "fromhex",
    "a2b_base64", "a2b_hex", "decode", "loads",
}  # fmt: skip
SCRIPT_PATTERNS = [
    re.compile(r"\beval\s*\("),
    re.compile(r"\bnew\s+Function\s*\("),
    re.compile(r"\b(atob|unescape)\s*\("),
    re.compile(r"String\.fromCharCode\s*\((\s*\d+\s*,){8,}"),
    re.compile(r"\bbase64\s+(-d|--decode)\b"),
    re.compile(r"\|\s*(ba|z|da)?sh\b(?!\w)"),
    re.compile(r"\beval\s+[\"']?\$\("),
]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _dotted(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return _name(func)


def _feeds_decoded(call: ast.Call) -> bool:
    args = [*call.args, *(keyword.value for keyword in call.keywords)]
    return any(
        isinstance(node, ast.Call) and _name(node.func) in DECODERS
        for arg in args
        for node in ast.walk(arg)
    )


def _python_findings(rel: str, text: str) -> list[Finding]:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [Finding(rel, exc.lineno or 0, "unparsable", "Python that does not parse")]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, dotted = _name(node.func), _dotted(node.func)
        bare = isinstance(node.func, ast.Name) or (
            isinstance(node.func, ast.Attribute) and _name(node.func.value) == "builtins"
        )
        strings = {a.value for a in node.args if isinstance(a, ast.Constant)}
        if name in RUN_TEXT and bare:
            found.append(Finding(rel, node.lineno, "runs-text", f"{name}() runs text as code"))
        elif name == "getattr" and strings & RUN_TEXT:
            found.append(Finding(rel, node.lineno, "runs-text", f"getattr(..., {strings})"))
        elif dotted in CODE_LOADERS:
            found.append(Finding(rel, node.lineno, "runs-text", f"{dotted}() makes code objects"))
        elif (name in IMPORTERS or dotted in IMPORTERS) and _feeds_decoded(node):
            found.append(Finding(rel, node.lineno, "decoded-code", f"{dotted}() of decoded data"))
    return found


def _script_findings(rel: str, lines: list[str]) -> list[Finding]:
    return [
        Finding(rel, number, "runs-text", pattern.pattern)
        for number, line in enumerate(lines, 1)
        for pattern in SCRIPT_PATTERNS
        if pattern.search(line)
    ]


def _char_findings(rel: str, lines: list[str]) -> list[Finding]:
    found = []
    for number, line in enumerate(lines, 1):
        for char in line:
            category = unicodedata.category(char)
            if (category == "Cc" and char not in ALLOWED_CONTROLS) or category in {
                "Cf", "Zl", "Zp", "Co", "Cs", "Cn",
            }:  # fmt: skip
                name = unicodedata.name(char, "unnamed")
                found.append(Finding(rel, number, "invisible", f"U+{ord(char):04X} {name}"))
    return found


def _shape_findings(rel: str, lines: list[str], limit: int) -> list[Finding]:
    found = []
    run = 0
    for number, line in enumerate(lines, 1):
        if len(line) > limit:
            found.append(Finding(rel, number, "long-line", f"{len(line)} chars (limit {limit})"))
        if match := BLOB_RUN.search(line):
            found.append(Finding(rel, number, "blob", f"{len(match.group())}-char encoded run"))
        if ESCAPES.search(line):
            found.append(Finding(rel, number, "escapes", "32 or more escape sequences in a row"))
        run = run + 1 if BLOB_LINE.match(line) else 0
        if run == BLOB_LINES:
            found.append(Finding(rel, number, "blob", f"{BLOB_LINES} encoded lines in a row"))
    code = [line for line in lines if line.strip()]
    if limit == CODE_LINE_LIMIT and code and sum(map(len, code)) / len(code) > 100:
        found.append(Finding(rel, 1, "minified", "mean line length over 100 chars"))
    return found


def is_script(path: Path, first_line: str) -> bool:
    return path.suffix in {".js", ".sh", ".html"} or (
        path.suffix == "" and first_line.startswith("#!") and "python" not in first_line
    )


def scan_text(rel: str, text: str) -> list[Finding]:
    """Every marker in one file's text; `rel` names the file (its suffix picks the rules)."""
    path = Path(rel)
    lines = text.splitlines()
    found = _char_findings(rel, lines)
    found += _shape_findings(rel, lines, PROSE.get(path.suffix, CODE_LINE_LIMIT))
    first = lines[0] if lines else ""
    if path.suffix == ".py" or (first.startswith("#!") and "python" in first):
        found += _python_findings(rel, text)
    elif is_script(path, first):
        found += _script_findings(rel, lines)
    return found


def scan_file(root: Path, rel: str) -> list[Finding]:
    """Images are skipped; any other file must be UTF-8 text with no NUL byte."""
    if Path(rel).suffix.lower() in IMAGES:
        return []
    data = (root / rel).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Finding(rel, 0, "binary", f"not UTF-8 text ({exc.reason})")]
    if "\x00" in text:
        return [Finding(rel, 0, "binary", "contains NUL bytes")]
    return scan_text(rel, text)
