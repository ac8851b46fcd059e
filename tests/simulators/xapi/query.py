"""XAPI's query grammar for ``get_all_where`` and ``get_all_records_where``.

    expr  := term (("and" | "or") term)*      same precedence, left to right
    term  := "not" expr | "(" expr ")" | "true" | "false" | value "=" value
    value := 'field "column"' | '"literal"'

As in xen-api's ocaml/database/db_filter_lex.mll and db_filter_parse.mly,
a literal is any text between two double quotes, with no escapes, and
there is no "<>". "and" and "or" bind tighter than "not", so
``not A and B`` means ``not (A and B)``.

Comparison is on the stored text of a column, so booleans compare as
"true"/"false" and numbers as decimal strings. Columns use XAPI's database
names, in which a namespaced field has a double underscore
(``name__label``, ``memory__static_max``).
"""

import datetime
import re

from .errors import Failure

_TOKEN = re.compile(r'[ \t\n]*(?:(\()|(\))|(=)|"([^"]*)"|([A-Za-z_]+))')

# Fields that sit in a datamodel namespace, so their database column joins
# the namespace and the name with "__".
# NOTE: inferred from how XAPI names its columns, not observed on a host.
NAMESPACED = {
    "name_label", "name_description",
    "memory_static_max", "memory_static_min", "memory_dynamic_max",
    "memory_dynamic_min", "VCPUs_params", "VCPUs_max", "VCPUs_at_startup",
    "actions_after_shutdown", "actions_after_reboot", "actions_after_crash",
    "PV_args", "PV_bootloader", "HVM_boot_policy", "HVM_boot_params",
    "API_version_major", "API_version_minor",
    "memory_total", "memory_free", "memory_actual",
    "VCPUs_number", "VCPUs_utilisation", "VCPUs_CPU", "VCPUs_flags",
    "qos_algorithm_type", "qos_algorithm_params", "qos_supported_algorithms",
}


def column_name(field):
    if field in NAMESPACED:
        head, _, tail = field.partition("_")
        return "%s__%s" % (head, tail)
    return field


def stored_text(value):
    """Return the database's text form of a field value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y%m%dT%H:%M:%SZ")
    if isinstance(value, list):
        return "(%s)" % " ".join("'%s'" % stored_text(v) for v in value)
    if isinstance(value, dict):
        return "(%s)" % " ".join("('%s' '%s')" % (k, stored_text(v))
                                 for k, v in value.items())
    return str(value)


def _tokens(text):
    position = 0
    tokens = []
    while position < len(text):
        if text[position:].strip(" \t\n") == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError("unexpected text at %d" % position)
        position = match.end()
        open_paren, close_paren, equal, literal, word = match.groups()
        if literal is not None:
            tokens.append(("literal", literal))
        elif word is not None:
            tokens.append(("word", word))
        else:
            tokens.append(("op", open_paren or close_paren or equal))
    return tokens


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.position = 0

    def peek(self):
        if self.position < len(self.tokens):
            return self.tokens[self.position]
        return (None, None)

    def take(self):
        token = self.peek()
        if token[0] is None:
            raise ValueError("unexpected end of expression")
        self.position += 1
        return token

    def expression(self):
        node = self.term()
        while self.peek() in (("word", "and"), ("word", "or")):
            _, word = self.take()
            node = (word, node, self.term())
        return node

    def term(self):
        kind, text = self.peek()
        if (kind, text) == ("word", "not"):
            self.take()
            return ("not", self.expression())
        if (kind, text) == ("op", "("):
            self.take()
            node = self.expression()
            if self.take() != ("op", ")"):
                raise ValueError("expected )")
            return node
        if (kind, text) in (("word", "true"), ("word", "false")):
            self.take()
            return ("const", text == "true")
        left = self.value()
        if self.take() != ("op", "="):
            raise ValueError("expected =")
        return ("=", left, self.value())

    def value(self):
        kind, text = self.take()
        if kind == "literal":
            return ("literal", text)
        if (kind, text) == ("word", "field"):
            kind, name = self.take()
            if kind != "literal":
                raise ValueError("expected a quoted field name")
            return ("field", name)
        raise ValueError("expected a value, got %r" % text)


def parse(text):
    """Parse a query; raise INVALID_VALUE when it is not in the grammar."""
    try:
        parser = _Parser(_tokens(text))
        node = parser.expression()
        if parser.position != len(parser.tokens):
            raise ValueError("trailing text")
    except ValueError:
        raise Failure("INVALID_VALUE", "expr", text) from None
    return node


def matches(node, record, columns):
    """Evaluate a parsed query against a record.

    ``columns`` maps database column names to record field names. A column
    the class does not have raises INTERNAL_ERROR, as the database lookup
    fails on a real host.
    """
    tag = node[0]
    if tag == "const":
        return node[1]
    if tag == "not":
        return not matches(node[1], record, columns)
    if tag == "and":
        return matches(node[1], record, columns) and matches(node[2], record, columns)
    if tag == "or":
        return matches(node[1], record, columns) or matches(node[2], record, columns)
    return _evaluate(node[1], record, columns) == \
        _evaluate(node[2], record, columns)


def _evaluate(value, record, columns):
    kind, text = value
    if kind == "literal":
        return text
    if text not in columns:
        raise Failure("INTERNAL_ERROR",
                      "DBCache_NotFound(missing field, %s)" % text)
    return stored_text(record[columns[text]])
