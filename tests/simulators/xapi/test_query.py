"""The simulator's query grammar accepts and reads expressions as XAPI's
does (xen-api's ocaml/database/db_filter_lex.mll and db_filter_parse.mly)."""

import pytest

from simplestack.adapters.xen.constants import GUEST_VM_QUERY
from tests.simulators.xapi import query
from tests.simulators.xapi.errors import Failure

COLUMNS = {"a": "a", "b": "b", "c": "c", "name__label": "name_label"}


def evaluate(text, **record):
    return query.matches(query.parse(text), record, dict(COLUMNS, **{
        name: name for name in record}))


def rows(text):
    """Return the (a, b, c) rows of booleans that ``text`` matches."""
    matched = []
    for a in (False, True):
        for b in (False, True):
            for c in (False, True):
                if evaluate(text, a=a, b=b, c=c):
                    matched.append((a, b, c))
    return matched


def truth(function):
    """Return the (a, b, c) rows of booleans that ``function`` accepts."""
    return [(a, b, c) for a in (False, True) for b in (False, True)
            for c in (False, True) if function(a, b, c)]


A, B, C = ('field "a" = "true"', 'field "b" = "true"', 'field "c" = "true"')


def test_not_takes_whole_chain():
    assert rows("not %s and %s" % (A, B)) == \
        truth(lambda a, b, c: not (a and b))
    assert rows("%s and not %s or %s" % (A, B, C)) == \
        truth(lambda a, b, c: a and not (b or c))


def test_parentheses_bound_not():
    assert rows("(not %s) and %s" % (A, B)) == \
        truth(lambda a, b, c: (not a) and b)


def test_and_or_left_to_right():
    assert rows("%s or %s and %s" % (A, B, C)) == \
        truth(lambda a, b, c: (a or b) and c)


@pytest.mark.parametrize("text", [
    'field "name__label" <> "x"',
    'field "name__label" = "a\\"b"',
    'field "name__label" = "x"\r',
    'field "name__label" == "x"',
    'field "name__label" = "x',
    "not",
])
def test_outside_grammar_is_invalid(text):
    with pytest.raises(Failure) as raised:
        query.parse(text)

    assert raised.value.args == ("INVALID_VALUE", "expr", text)


def test_literal_keeps_backslash():
    assert evaluate('field "name__label" = "a\\b"', name_label="a\\b")


def test_whitespace_between_tokens():
    assert evaluate('\tfield "a"\n=\n"true" ', a=True)


def test_guest_list_query():
    flags = ("is_a_template", "is_a_snapshot", "is_control_domain")
    for values in ((False, False, False), (True, False, False),
                   (True, True, False), (False, False, True)):
        record = dict(zip(flags, values))

        assert evaluate(GUEST_VM_QUERY, **record) == (not any(values))
