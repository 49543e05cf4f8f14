#!/usr/bin/env python3
"""Canonical JSON vectors for felhom signed-op blobs (python3 stdlib only).

    python3 vectors/canonical/mkvectors.py           # (re)write the vectors here
    python3 vectors/canonical/mkvectors.py --check   # verify the files on disk
    python3 vectors/canonical/mkvectors.py --canon FILE   # canonicalize one file
    python3 vectors/canonical/mkvectors.py --canon-dir DIR
        # one line per file of DIR (sorted): "NAME<TAB>ok<TAB>HEX" or
        # "NAME<TAB>malformed"; test_canonical compares json_canonical with it
        # over the fuzz corpus (a differential test of the two implementations)

The cases are the table CASES below. Each is either
  NAME.in.json -> NAME.out   (expected canonical bytes, no trailing newline), or
  NAME.bad.json              (must be rejected: outcome "malformed").
manifest.txt lists every case as "NAME<TAB>OUTCOME<TAB>what it covers".

Every expected output is computed by canon() below, an independent reference
implementation of the subset (include/opblob.h; docs/felhom-opsign.md), and
cross-checked against the literal expectation written in the table, so a
change of either is caught. The agent's C implementation (src/opblob.c,
json_canonical) is held to the same files by test/test_canonical.c.

The subset, in short: RFC 8785 restricted to integers in [-(2^53-1), 2^53-1]
(no fraction, no exponent, no -0), keys sorted by their UTF-8 bytes (not
RFC 8785's UTF-16 code units: see key_order_utf16_vs_bytes), strings
well-formed UTF-8 without U+0000, duplicate keys rejected, input at most
64 KiB and nested at most 32 deep (the last two are the agent's caps;
the cases that test them say "limit").
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_SAFE = 2**53 - 1


class Malformed(ValueError):
    """An input outside the subset (a ValueError, so it passes through
    json.loads' hooks unchanged)."""


# ---------------------------------------------------------------------------
# Reference canonicalizer


def _reject_float(text):
    raise Malformed("float or exponent")


def _reject_constant(text):
    raise Malformed("NaN/Infinity")


def _int(text):
    if text == "-0":
        raise Malformed("negative zero")
    v = int(text)
    if abs(v) > MAX_SAFE:
        raise Malformed("integer outside +-(2^53-1)")
    return v


def _pairs(pairs):
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise Malformed("duplicate key")
        seen.add(k)
    return dict(pairs)


def _check(v, depth):
    if isinstance(v, (dict, list)):
        depth += 1
        if depth > MAX_DEPTH:
            raise Malformed("nesting too deep")
        items = v.items() if isinstance(v, dict) else enumerate(v)
        for k, x in items:
            if isinstance(k, str):
                _check_str(k)
            _check(x, depth)
    elif isinstance(v, str):
        _check_str(v)


def _check_str(s):
    if "\x00" in s:
        raise Malformed("NUL")
    try:
        s.encode("utf-8")        # lone surrogates from \u escapes fail here
    except UnicodeEncodeError:
        raise Malformed("unpaired surrogate")


def _str(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _emit(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, list):
        return "[" + ",".join(_emit(x) for x in v) + "]"
    keys = sorted(v, key=lambda k: k.encode("utf-8"))     # byte order
    return "{" + ",".join(_str(k) + ":" + _emit(v[k]) for k in keys) + "}"


def canon(data):
    """Canonical bytes of data, or raises Malformed."""
    if len(data) > MAX_BYTES:
        raise Malformed("too long")
    try:
        text = data.decode("utf-8")   # strict: overlong, surrogates, > U+10FFFF fail
    except UnicodeDecodeError:
        raise Malformed("invalid UTF-8")
    if text.strip(" \t\r\n") == "":
        raise Malformed("empty")
    try:
        v = json.loads(text, object_pairs_hook=_pairs, parse_float=_reject_float,
                       parse_int=_int, parse_constant=_reject_constant)
    except Malformed:
        raise
    except (ValueError, RecursionError):   # JSONDecodeError is a ValueError
        raise Malformed("syntax")
    _check(v, 0)
    return _emit(v).encode("utf-8")


# ---------------------------------------------------------------------------
# The cases: (name, input bytes, expected output bytes or None, note)

BLOB = (b'{\n  "v": 1,\n  "op": "storage_wipe",\n  "host_id": "host-7f3a",\n  "guest_id": null,\n'
        b'  "params": {"durable_id": "byid:ata-WDC_X"},\n  "key_id": "ops-anna",\n'
        b'  "nonce": "q3J0bm9uY2Utbm9uY2U",\n  "issued_at": 1781000000,\n  "expires_at": 1781000900\n}\n')
BLOB_OUT = (b'{"expires_at":1781000900,"guest_id":null,"host_id":"host-7f3a","issued_at":1781000000,'
            b'"key_id":"ops-anna","nonce":"q3J0bm9uY2Utbm9uY2U","op":"storage_wipe",'
            b'"params":{"durable_id":"byid:ata-WDC_X"},"v":1}')

CASES = [
    # --- key ordering
    ("key_order_basic", b'{"b":1,"a":2,"c":3}', b'{"a":2,"b":1,"c":3}', "keys sorted"),
    ("key_order_prefix", b'{"ab":1,"a":2,"":3}', b'{"":3,"a":2,"ab":1}',
     "empty key first; a key before every key it prefixes"),
    ("key_order_case", b'{"a":1,"B":2,"_":3,"A":4}', b'{"A":4,"B":2,"_":3,"a":1}',
     "byte order: upper case, then underscore, then lower case"),
    ("key_order_digits", b'{"z":1,"10":2,"9":3,"1":4}', b'{"1":4,"10":2,"9":3,"z":1}',
     "digit keys sort as text, not as numbers"),
    ("key_order_bmp", '{"\u20ac":3,"z":2,"\u00e9":1}'.encode(), '{"z":2,"\u00e9":1,"\u20ac":3}'.encode(),
     "non-ASCII BMP keys (U+00E9, U+20AC): byte order equals UTF-16 order here"),
    ("key_order_utf16_vs_bytes", b'{"\\ud83d\\ude00":1,"\\ufb01":2}', '{"\ufb01":2,"\U0001f600":1}'.encode(),
     "U+FB01 (EF AC 81) sorts before U+1F600 (F0 9F 98 80) by bytes; RFC 8785's UTF-16 order "
     "(FB01 vs D83D) would put U+1F600 first: we use byte order"),
    ("key_order_utf16_vs_bytes_raw", '{"\U0001f600":1,"\ufb01":2}'.encode(), '{"\ufb01":2,"\U0001f600":1}'.encode(),
     "the same with raw UTF-8 input"),
    ("key_order_escaped_input", b'{"\\u0062":1,"a":2}', b'{"a":2,"b":1}',
     "keys are sorted after decoding their escapes"),
    ("key_order_controls", b'{"\\n":1,"\\t":2," ":3}', b'{"\\t":2,"\\n":1," ":3}',
     "control-character keys sort by their byte (09 < 0a < 20), then are escaped"),
    ("key_order_nested", b'{"z":{"y":1,"x":[{"b":1,"a":2}]},"a":null}',
     b'{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}', "objects at every depth are sorted"),
    ("array_order_kept", b'[3,1,2,"b","a",{"b":0,"a":0}]', b'[3,1,2,"b","a",{"a":0,"b":0}]',
     "array elements keep their order"),
    # --- whitespace
    ("whitespace_removed", b' \n\t{ "a" : [ 1 , 2 ] ,\r\n "b" : { } } \n', b'{"a":[1,2],"b":{}}',
     "space, tab, CR, LF between tokens are dropped"),
    ("whitespace_in_strings_kept", b'{"a b":" x "}', b'{"a b":" x "}', "spaces inside strings are content"),
    # --- scalars and empties
    ("empty_object", b'{}', b'{}', "empty object"),
    ("empty_array", b'[ ]', b'[]', "empty array"),
    ("empty_string", b'""', b'""', "a top-level string"),
    ("literals", b'[true, false, null]', b'[true,false,null]', "the three literals"),
    ("top_level_integer", b' 42 ', b'42', "a top-level integer"),
    # --- integers
    ("int_zero", b'[0]', b'[0]', "zero"),
    ("int_negative", b'[-1,-42]', b'[-1,-42]', "negative integers"),
    ("int_max_safe", b'[9007199254740991]', b'[9007199254740991]', "2^53-1, the largest accepted"),
    ("int_min_safe", b'[-9007199254740991]', b'[-9007199254740991]', "-(2^53-1), the smallest accepted"),
    ("int_timestamps", b'{"t":1781000000}', b'{"t":1781000000}', "a typical epoch value"),
    # --- string escapes
    ("escape_quote_backslash", b'["a\\"b\\\\c"]', b'["a\\"b\\\\c"]', "quote and backslash stay escaped"),
    ("escape_solidus_decoded", b'["\\/x/"]', b'["/x/"]', "an escaped solidus is written plain"),
    ("escape_short_forms", b'["\\b\\f\\n\\r\\t"]', b'["\\b\\f\\n\\r\\t"]', "the five short escapes are kept"),
    ("escape_short_from_u", b'["\\u0008\\u000C\\u000a\\u000D\\u0009"]', b'["\\b\\f\\n\\r\\t"]',
     "\\u forms of the short-escape controls become short escapes"),
    ("escape_other_controls", b'["\\u0001\\u001F\\u000b\\u001e\\u007F"]',
     b'["\\u0001\\u001f\\u000b\\u001e\x7f"]',
     "other controls as \\u00xx in lower-case hex; DEL (0x7f) verbatim"),
    ("del_verbatim", b'["\x7f"]', b'["\x7f"]', "a raw DEL byte stays verbatim"),
    ("escape_unicode_decoded", b'["\\u0041\\u00e9\\u20AC\\ud83d\\ude00"]', '["A\u00e9\u20ac\U0001f600"]'.encode(),
     "\\u escapes (incl. a surrogate pair) are decoded to UTF-8"),
    ("nonascii_verbatim", '["\u00e1rv\u00edzt\u0171r\u0151 t\u00fck\u00f6rf\u00far\u00f3g\u00e9p"]'.encode(),
     '["\u00e1rv\u00edzt\u0171r\u0151 t\u00fck\u00f6rf\u00far\u00f3g\u00e9p"]'.encode(), "raw UTF-8 stays verbatim"),
    ("line_separators_verbatim", b'["\\u2028\\u2029"]', '["\u2028\u2029"]'.encode(),
     "U+2028 and U+2029 are not escaped"),
    ("noncharacter_verbatim", b'["\\uffff\\ufffe"]', '["\uffff\ufffe"]'.encode(), "noncharacters are well-formed"),
    ("max_code_point", b'["\\udbff\\udfff"]', '["\U0010ffff"]'.encode(), "U+10FFFF from its surrogate pair"),
    ("escaped_key", b'{"a\\"b":1}', b'{"a\\"b":1}', "keys are escaped like strings"),
    # --- blobs
    ("blob_spec_example", BLOB, BLOB_OUT, "SPEC 5's host-scoped storage_wipe blob, pretty-printed and shuffled"),
    ("blob_guest", b'{"v":1,"params":{},"op":"guest_destroy","nonce":"AAAAAAAAAAAAAAAA","key_id":"ops anna",'
     b'"issued_at":1,"host_id":"h","guest_id":100,"expires_at":2}',
     b'{"expires_at":2,"guest_id":100,"host_id":"h","issued_at":1,"key_id":"ops anna",'
     b'"nonce":"AAAAAAAAAAAAAAAA","op":"guest_destroy","params":{},"v":1}', "a guest-scoped blob, empty params"),
    ("blob_params_types", b'{"params":{"n":-5,"s":"x","b":true,"z":null}}',
     b'{"params":{"b":true,"n":-5,"s":"x","z":null}}', "param value types the blob allows"),
    # --- depth
    ("depth_32", b'[' * 32 + b']' * 32, b'[' * 32 + b']' * 32, "limit: 32 nested containers are accepted"),
    ("size_at_cap", b'[' + b' ' * (MAX_BYTES - 3) + b'1]', b'[1]', "limit: exactly 64 KiB of input is accepted"),

    # --- rejected: numbers
    ("float_fraction", b'[1.5]', None, "fraction"),
    ("float_integral", b'[1.0]', None, "an integral float is still a float"),
    ("float_zero", b'[0.0]', None, "0.0"),
    ("exponent", b'[1e3]', None, "exponent"),
    ("exponent_upper", b'[1E3]', None, "upper-case exponent"),
    ("exponent_fraction", b'[-2.5e-1]', None, "fraction and exponent"),
    ("negative_zero", b'[-0]', None, "-0 is rejected, not normalized (0 or -0 would each surprise someone)"),
    ("int_over_max", b'[9007199254740992]', None, "2^53"),
    ("int_under_min", b'[-9007199254740992]', None, "-(2^53)"),
    ("int_huge", b'[123456789012345678901234567890]', None, "far outside"),
    ("leading_zero", b'[01]', None, "leading zero (not JSON)"),
    ("plus_sign", b'[+1]', None, "plus sign (not JSON)"),
    ("nan", b'[NaN]', None, "NaN (not JSON)"),
    ("infinity", b'[-Infinity]', None, "Infinity (not JSON)"),
    # --- rejected: duplicates
    ("dup_key", b'{"a":1,"a":2}', None, "duplicate key"),
    ("dup_key_same_value", b'{"a":1,"a":1}', None, "duplicate key with equal values"),
    ("dup_key_nested", b'{"x":{"a":1,"a":2}}', None, "duplicate key in a nested object"),
    ("dup_key_in_array", b'[{"a":1},{"b":1,"b":1}]', None, "duplicate key inside an array element"),
    ("dup_key_escaped", b'{"a":1,"\\u0061":2}', None, "duplicate once escapes are decoded"),
    # --- rejected: strings
    ("nul_escape", b'["a\\u0000b"]', None, "U+0000 in a string"),
    ("nul_in_key", b'{"\\u0000":1}', None, "U+0000 in a key"),
    ("surrogate_lone_high", b'["\\ud800"]', None, "unpaired high surrogate escape"),
    ("surrogate_lone_low", b'["\\udc00"]', None, "unpaired low surrogate escape"),
    ("surrogate_high_then_text", b'["\\ud800x"]', None, "high surrogate followed by a plain character"),
    ("surrogate_high_then_bmp", b'["\\ud800\\u0041"]', None, "high surrogate followed by a non-surrogate escape"),
    ("surrogate_reversed", b'["\\udc00\\ud800"]', None, "low then high"),
    ("surrogate_in_key", b'{"\\ud800":1}', None, "unpaired surrogate in a key"),
    ("utf8_overlong_nul", b'["\xc0\x80"]', None, "overlong encoding of U+0000"),
    ("utf8_overlong_slash", b'["\xe0\x80\xaf"]', None, "overlong 3-byte encoding"),
    ("utf8_surrogate", b'["\xed\xa0\x80"]', None, "UTF-8-encoded surrogate"),
    ("utf8_above_max", b'["\xf4\x90\x80\x80"]', None, "code point above U+10FFFF"),
    ("utf8_f5", b'["\xf5\x80\x80\x80"]', None, "byte F5"),
    ("utf8_truncated", b'["\xc3"]', None, "truncated sequence"),
    ("utf8_lone_continuation", b'["\x80"]', None, "lone continuation byte"),
    ("utf8_in_key", b'{"\xff":1}', None, "invalid UTF-8 in a key"),
    ("raw_control", b'["a\tb"]', None, "raw control byte in a string"),
    ("raw_newline", b'["a\nb"]', None, "raw newline in a string"),
    ("bad_escape", b'["\\x41"]', None, "unknown escape"),
    ("single_quotes", b"['a']", None, "single quotes (not JSON)"),
    # --- rejected: structure
    ("empty_input", b'', None, "empty input"),
    ("only_whitespace", b' \n ', None, "only whitespace"),
    ("trailing_garbage", b'{} x', None, "bytes after the value"),
    ("trailing_open_string", b'{} "x', None, "an unterminated string after the value (yajl 2.1 alone accepts it)"),
    ("trailing_quote", b'[1]"', None, "a lone quote after the value"),
    ("two_values", b'{}{}', None, "two top-level values"),
    ("trailing_comma_array", b'[1,]', None, "trailing comma in an array"),
    ("trailing_comma_object", b'{"a":1,}', None, "trailing comma in an object"),
    ("comment", b'// c\n[1]', None, "comments are not JSON"),
    ("bom", b'\xef\xbb\xbf[1]', None, "a UTF-8 byte order mark"),
    ("vertical_tab", b'\x0b[1]', None, "vertical tab is not JSON whitespace"),
    ("form_feed", b'[1,\x0c2]', None, "form feed is not JSON whitespace"),
    ("unclosed", b'{"a":[1,2}', None, "mismatched brackets"),
    ("depth_33", b'[' * 33 + b']' * 33, None, "limit: 33 nested containers"),
    ("size_over_cap", b'[' + b' ' * (MAX_BYTES - 2) + b'1]', None, "limit: one byte over 64 KiB"),
]


def render():
    """{filename: bytes} for every vector file plus the manifest."""
    files = {}
    lines = ["# Canonical JSON conformance cases; generated by mkvectors.py, do not edit.",
             "# NAME<TAB>OUTCOME<TAB>note",
             "#   ok         NAME.in.json canonicalizes to exactly the bytes of NAME.out",
             "#   malformed  NAME.bad.json is rejected (the agent: FH_ERR_SIG_MALFORMED)"]
    names = set()
    for name, inp, want, note in CASES:
        if name in names:
            raise SystemExit("duplicate case " + name)
        names.add(name)
        try:
            got = canon(inp)
        except Malformed:
            got = None
        if got != want:
            raise SystemExit("reference canonicalizer disagrees with the table on %s: %r != %r"
                             % (name, got, want))
        if want is None:
            files[name + ".bad.json"] = inp
            lines.append("%s\tmalformed\t%s" % (name, note))
        else:
            files[name + ".in.json"] = inp
            files[name + ".out"] = want
            lines.append("%s\tok\t%s" % (name, note))
    files["manifest.txt"] = ("\n".join(lines) + "\n").encode()
    return files


def main(argv):
    if len(argv) == 3 and argv[1] == "--canon":
        with open(argv[2], "rb") as f:
            try:
                sys.stdout.buffer.write(canon(f.read()))
            except Malformed as e:
                print("malformed: %s" % e, file=sys.stderr)
                return 1
        return 0
    if len(argv) == 3 and argv[1] == "--canon-dir":
        for fn in sorted(os.listdir(argv[2])):
            p = os.path.join(argv[2], fn)
            if fn.startswith(".") or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                try:
                    print("%s\tok\t%s" % (fn, canon(f.read()).hex()))
                except Malformed:
                    print("%s\tmalformed" % fn)
        return 0
    files = render()
    if len(argv) == 2 and argv[1] == "--check":
        bad = 0
        for fn, data in sorted(files.items()):
            p = os.path.join(HERE, fn)
            try:
                with open(p, "rb") as f:
                    disk = f.read()
            except OSError:
                disk = None
            if disk != data:
                print("differs: " + fn)
                bad += 1
        ours = set(files) | {os.path.basename(__file__)}
        for fn in sorted(os.listdir(HERE)):
            if fn not in ours and not fn.startswith(".") and fn != "__pycache__":
                print("stray file: " + fn)
                bad += 1
        print("%d files checked, %d problems" % (len(files), bad))
        return 1 if bad else 0
    if len(argv) != 1:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    for fn, data in files.items():
        with open(os.path.join(HERE, fn), "wb") as f:
            f.write(data)
    print("wrote %d files (%d cases)" % (len(files), len(CASES)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
