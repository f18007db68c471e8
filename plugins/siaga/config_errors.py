"""How a mistake in an operator's config file is told: `file:line:column: field: message`.

Operators edit these files by hand, often under pressure; an error that names the file, the
exact line and column and the field's dotted path lets them fix it without reading code, and
editors jump to `file:line:column` by themselves. Every config file (hazard lists, routing,
sources, aliases, roads, detection settings, abbreviations) reports through `ConfigProblem`, so
they all read alike.

PyYAML's `safe_load` forgets where things were, so a file is composed into its node tree and
turned into plain data here (`parse_yaml`), keeping each field's key and value position. Errors
are then placed where the operator must look:
- an unknown key at the key itself, with the nearest allowed key ("did you mean ...?");
- a wrong value at the value; a missing field at the key of the mapping that lacks it;
- a YAML syntax error where it starts: an unclosed quote or bracket at its opening mark (PyYAML's
  `context_mark`), not where the scanner gave up hundreds of lines later, and a quote that runs
  on over following lines at the line where it opens.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from siaga.files import read_regular_file
from siaga.redaction import redact_text

if TYPE_CHECKING:  # imported where used: `siaga tag` reads no config file when its matchers are cached
    import jsonschema
    import yaml

FieldPath = tuple[Any, ...]

TOP_LEVEL = "(top level)"
SYNTAX = "(syntax)"
FILE = "(file)"

# PyYAML contexts naming something opened and never closed: the opening mark is the place to fix.
_OPENED = {
    "while scanning a quoted scalar": "quoted text",
    "while parsing a flow sequence": "'['",
    "while parsing a flow mapping": "'{'",
    "while scanning a block scalar": "block text",
}
# A continuation line of quoted text that looks like YAML structure ("  - term", "key: value"):
# the quote was meant to end on its own line.
_STRUCTURE_LINE = re.compile(r"^\s*(- |[A-Za-z_][\w-]*:(\s|$))")


@dataclass(frozen=True, order=True)
class ConfigProblem:
    """One error or warning about a config file, at a 1-based line and column. Its message is
    redacted here, once for every file: a check quotes the value it refuses, and operators put
    secrets in the wrong field (a bot token as a channel, a password under `conn_id`, a feed's
    `?token=`); the message is printed, and logged by every DAG that refuses the file."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", redact_text(self.message))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {self.message}"


class ConfigError(ValueError):
    """A config file is refused; `problems` are every error found, one per line in the message."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = list(problems)


class ConfigSyntaxError(ConfigError):
    """A file that is not readable YAML; `problem` says where and why."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__([problem])
        self.problem = problem


@dataclass
class Document:
    """A YAML file's data with the position of every field: `keys` where a mapping key is
    written, `values` where each node starts (both 1-based (line, column))."""

    source: str
    data: Any
    text: str = ""
    keys: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    collections: set[FieldPath] = field(default_factory=set)

    def position(self, path: Sequence[Any], on_key: bool = False) -> tuple[int, int]:
        """Where the field at `path` is, or its nearest existing ancestor. A scalar is shown at
        its value; a mapping or list, a missing field and an unknown key at the key naming it."""
        path = tuple(path)
        trimmed = False
        while path and path not in self.values:
            path, trimmed = path[:-1], True
        if on_key or trimmed or path in self.collections:
            return self.keys.get(path) or self.values.get(path, (1, 1))
        return self.values.get(path, (1, 1))

    def at(self, path: Sequence[Any], message: str, on_key: bool = False) -> ConfigProblem:
        """A problem about the field at `path`, named by its dotted path."""
        line, column = self.position(path, on_key)
        return ConfigProblem(self.source, line, column, dotted(path) or TOP_LEVEL, message)


def dotted(path: Sequence[Any]) -> str:
    """`receivers[0].quiet_hours.start` for ["receivers", 0, "quiet_hours", "start"]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_DOTTED_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def undotted(text: str) -> FieldPath:
    """The path `dotted` wrote: ("sources", 0, "feeds", 1) for "sources[0].feeds[1]"."""
    return tuple(int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _DOTTED_PART.finditer(text))


def file_problem(source: str | Path, message: str) -> ConfigProblem:
    """A problem with the file as a whole (unreadable, empty): shown at its first line."""
    return ConfigProblem(str(source), 1, 1, FILE, message)


# ------------------------------------------------------------------------------------------
# Reading YAML with positions
# ------------------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> Document:
    """The YAML file at `path` with positions; ConfigSyntaxError when it cannot be read, is not
    UTF-8, is not YAML or repeats a key."""
    return parse_yaml(read_config_text(path), str(path))


# Far above any config file (the hazard lists are a few kB each, an imported roads.yaml some MB).
MAX_CONFIG_BYTES = 20_000_000


def read_config_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of the config file at `path`; ConfigSyntaxError at the file when it cannot be
    read, is not a regular file, is larger than MAX_CONFIG_BYTES or is not UTF-8.

    A device or a pipe in a config file's place (`ln -s /dev/zero routing.yaml`, a FIFO) was read
    until memory ran out (a MemoryError traceback from `siaga check`, every loader with it) or
    waited on for ever (`files.read_regular_file`)."""
    path = Path(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigSyntaxError(file_problem(path, f"cannot read: {exc.strerror or exc}")) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigSyntaxError(file_problem(path, f"larger than {MAX_CONFIG_BYTES:,} bytes: not a config file"))
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigSyntaxError(file_problem(path, f"not UTF-8 text ({exc.reason})")) from None
    if not text.strip():
        # `cp new.yaml detection.yaml` and many editors empty a file before writing it: read in
        # between, an empty detection.yaml put the defaults in force, an empty sources.yaml no
        # source at all, each kept as the last good version. A file meant to set nothing says so.
        raise ConfigSyntaxError(file_problem(path, "file is empty (caught half-written?): to set nothing, write a comment "
                                                   "in it or delete it"))
    return text


def present(path: str | Path) -> bool:
    """Whether a config file the deployment may go without is there to be read: anything at
    the path, a link to nowhere or a link loop too (then its reader refuses it, naming it, and
    the last good version stays in force). `Path.exists()` says no for those, and a broken
    link in place of detection.yaml silently put the defaults in force."""
    path = Path(path)
    return path.exists() or path.is_symlink()


def parse_yaml(text: str, source: str) -> Document:
    """`text` as data with positions (an empty document is None at 1:1)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigSyntaxError(syntax_problem(source, text, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigSyntaxError(ConfigProblem(source, 1, 1, SYNTAX, str(exc))) from None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise ConfigSyntaxError(ConfigProblem(source, 1, 1, SYNTAX, f"nested deeper than {MAX_DEPTH} levels")) from None
    doc = Document(source, None, text)
    if node is None:
        doc.values[()] = (1, 1)
        return doc
    try:
        doc.data = _data_of(node, (), doc, yaml.SafeLoader(""), [_MAX_VALUES_PER_CHAR * len(text) + 1000])
    except yaml.MarkedYAMLError as exc:  # e.g. a bad timestamp or an unknown tag
        raise ConfigSyntaxError(syntax_problem(source, text, exc)) from None
    return doc


# Values a document may hold per character of its text. Without aliases a value takes a few
# characters; an alias repeats its anchor's values, and nested ones multiply them (nine lines of
# "billion laughs" made 387 million values: minutes and gigabytes before any check ran).
_MAX_VALUES_PER_CHAR = 10
# Lists and mappings one inside another: no config file needs more than a handful of levels, and
# every reader (the schema check, the route tree) walks them recursively.
MAX_DEPTH = 64


def read_document(path: str | Path, refused: type[ConfigError]) -> Document:
    """`read_yaml`, with a syntax error raised as the caller's own error type, so a settings
    module refuses an unreadable file and a wrong one with one kind of exception."""
    try:
        return read_yaml(path)
    except ConfigSyntaxError as exc:
        raise refused(exc.problems) from None


def document_of(data: Any, source: str, text: str | None, refused: type[ConfigError]) -> Document:
    """A document for data parsed elsewhere; with its `text`, parsed again so that errors are
    placed at their line (syntax errors raised as `refused`)."""
    if text is None:
        return Document(source, data)
    try:
        return parse_yaml(text, source)
    except ConfigSyntaxError as exc:
        raise refused(exc.problems) from None


def _mark(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _data_of(node: yaml.Node, path: FieldPath, doc: Document, loader: yaml.SafeLoader, budget: list[int]) -> Any:
    """The data of `node`, recording each value's position; `budget` is how many more values
    the document may hold (aliases repeat theirs): refused at the value that exceeds it."""
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path) or TOP_LEVEL,
                                              "aliases repeat values more than a config file can hold"))
    doc.values[path] = _mark(node.start_mark)
    if len(path) > MAX_DEPTH:
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path[:3]) + "...",
                                              f"nested deeper than {MAX_DEPTH} levels"))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTIONS:
        # A tag on a scalar is refused by its constructor; one on a list or mapping
        # ("!!python/object/apply:os.system [...]", "!!omap") was read as if it were not there,
        # so a file the DAGs' own tools (`yaml.safe_load`) refuse passed the check.
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path) or TOP_LEVEL,
                                              f"the tag {node.tag!r} is not allowed: write a plain list or mapping"))
    if isinstance(node, yaml.MappingNode):
        doc.collections.add(path)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # a list or mapping as a key: its text could be huge
                raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(key_node.start_mark), dotted(path) or TOP_LEVEL,
                                                      "a key must be a plain value, not a list or mapping"))
            key = str(_construct(loader, key_node, path, doc))
            child = path + (key,)
            if key in out:
                first = doc.keys[child]
                problem = ConfigProblem(doc.source, *_mark(key_node.start_mark), dotted(child),
                                        f"duplicate key (first at line {first[0]})")
                raise ConfigSyntaxError(problem)
            doc.keys[child] = _mark(key_node.start_mark)
            out[key] = _data_of(value_node, child, doc, loader, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        doc.collections.add(path)
        return [_data_of(item, path + (i,), doc, loader, budget) for i, item in enumerate(node.value)]
    value = _construct(loader, node, path, doc)
    if isinstance(value, float) and not math.isfinite(value):
        # YAML's .nan and .inf: no setting means either, and NaN passes every JSON Schema bound
        # (each comparison with it is false), so `sensitivity: .nan` was accepted and reached
        # the spike test, as a NaN coordinate reached the road and alias maps
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path) or TOP_LEVEL,
                                              f"{node.value!r} is not a finite number"))
    return value


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: FieldPath, doc: Document) -> Any:
    """The value of a node, refused at it when PyYAML's constructors fail with a bare ValueError:
    an integer of more than 4300 digits (Python's `int` limit) or a date that does not exist
    (`2026-02-30`) was a traceback from `siaga check` and from every run reading the file, which
    no last good version caught."""
    shown = node.value if len(node.value) <= 40 else node.value[:20] + "..."
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        reason = str(exc).split(";")[0]
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path) or TOP_LEVEL,
                                              f"{shown!r} cannot be read ({reason})")) from None
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        # written in hex, it passed `int`, and the schema's message about it ("... is greater than
        # the maximum") failed to print it
        raise ConfigSyntaxError(ConfigProblem(doc.source, *_mark(node.start_mark), dotted(path) or TOP_LEVEL,
                                              f"{shown!r} cannot be read (a number of more than {_MAX_INT_DIGITS} digits)"))
    return value


_PLAIN_COLLECTIONS = frozenset(("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"))
# No setting is anywhere near this; a number past it is a typo or an attack on the reader. Below
# it, the schema refuses an out-of-range number with its range ("greater than the maximum of
# 180"), which tells the operator more; above it, the number could be too long to print.
_MAX_INT_DIGITS = 1000
_MAX_INT_BITS = int(_MAX_INT_DIGITS * 3.33)


def syntax_problem(source: str, text: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    """A YAML error placed where the operator must fix it (see the module docstring)."""
    problem, pmark = exc.problem or "not valid YAML", exc.problem_mark
    where = f" at line {pmark.line + 1}, column {pmark.column + 1}" if pmark else ""
    runaway = _runaway_quote(text, exc)
    if runaway is not None:
        start, end = runaway
        return ConfigProblem(source, *_mark(start), SYNTAX,
                             f"quoted text opened here runs on to line {end.line + 1}: is its closing quote missing? "
                             f"({problem}{where})")
    opened = _OPENED.get(exc.context or "")
    if opened and exc.context_mark is not None:
        return ConfigProblem(source, *_mark(exc.context_mark), SYNTAX,
                             f"{opened} opened here is never closed ({problem}{where})")
    if pmark is None:
        return ConfigProblem(source, 1, 1, SYNTAX, problem)
    context = f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
    return ConfigProblem(source, *_mark(pmark), SYNTAX, f"{problem}{context}")


def _runaway_quote(text: str, exc: yaml.MarkedYAMLError) -> tuple[yaml.Mark, yaml.Mark] | None:
    """The first quoted scalar before the error that spans lines looking like YAML structure:
    a quote left open on one line closes at the next quote, far below, and the error shows
    there. None when there is no such quote (or the error is the quote's own)."""
    import yaml

    if (exc.context or "") == "while scanning a quoted scalar":
        return None
    limit = exc.problem_mark.index if exc.problem_mark is not None else len(text)
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= limit:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ("'", '"') and token.end_mark.line > token.start_mark.line:
                inner = text[token.start_mark.index:token.end_mark.index].splitlines()[1:]
                if any(_STRUCTURE_LINE.match(line) for line in inner):
                    return token.start_mark, token.end_mark
    except yaml.YAMLError:
        pass
    return None


# ------------------------------------------------------------------------------------------
# Schema errors
# ------------------------------------------------------------------------------------------


def schema_problems(doc: Document, schema: dict[str, Any] | jsonschema.protocols.Validator) -> list[ConfigProblem]:
    """Every JSON Schema error of the document, each where it belongs, in file order."""
    import jsonschema

    validator = schema if not isinstance(schema, dict) else jsonschema.Draft202012Validator(schema)
    problems: set[ConfigProblem] = set()
    for err in validator.iter_errors(doc.data):
        problems.update(_placed(doc, err))
    return sorted(problems, key=lambda p: (p.line, p.column, p.field, p.message))


def _placed(doc: Document, err: jsonschema.ValidationError) -> Iterable[ConfigProblem]:
    path = tuple(err.absolute_path)
    instance, schema = err.instance, err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for key in instance:
            if key in allowed or any(p.search(key) for p in patterns):
                continue
            hint = did_you_mean(key, allowed)
            yield doc.at(path + (key,), f"Additional properties are not allowed ({key!r} was unexpected){hint}", on_key=True)
        return
    if err.validator == "required" and isinstance(instance, dict):
        for name in err.validator_value:
            if name not in instance:
                line, column = doc.position(path, on_key=True)
                yield ConfigProblem(doc.source, line, column, dotted(path + (name,)), f"{name!r} is a required property")
        return
    if "propertyNames" in err.absolute_schema_path and isinstance(instance, str):
        # the message is about a key's name (jsonschema gives the mapping's path): at the key
        yield doc.at(path + (instance,), err.message, on_key=True)
        return
    yield doc.at(path, _quoting_less(err.message, instance))


# The longest value a schema error quotes whole (a long feed URL still is): a file that is one
# long string (a hazard file linked to /etc/passwd) was quoted entire, in one line of the
# check's output and of the logs.
QUOTED_CHARS = 300


def _quoting_less(message: str, instance: Any) -> str:
    """jsonschema's message, which opens with the refused value's repr, with a mapping or list
    named by its kind (its contents are other fields, told apart where they are wrong, and may
    hold a password) and a long string cut."""
    quoted = repr(instance)
    if not message.startswith(quoted):
        return message
    if isinstance(instance, dict):
        shown = "a mapping"
    elif isinstance(instance, list):
        shown = "a list"
    elif isinstance(instance, str) and len(instance) > QUOTED_CHARS:
        # redacted before it is cut: a secret cut in two would no longer look like one
        shown = f"{redact_text(instance)[:QUOTED_CHARS]!r}… ({len(instance)} characters)"
    else:
        return message
    return shown + message[len(quoted):]


def did_you_mean(word: str, allowed: Iterable[str]) -> str:
    """"; did you mean 'severity_cues'?" for a near miss among `allowed`, else ""."""
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""

