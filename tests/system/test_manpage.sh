#!/bin/bash
# The manual pages document exactly what the programs accept:
#   - every verb of `ezioctl --help` (the verb table) has an entry in
#     man/ezioctl.1, and every option of `ezioctl --help` / `ezioctl help
#     VERB` is there;
#   - every option of eziod (`eziod --help`, and daemon/main.cpp when eziod
#     is not built) is in man/eziod.8;
#   - no page documents an option that no longer exists;
#   - both pages have the usual sections and render without groff warnings.
# Needs no root.
set -euo pipefail

EZIO_SOURCE_DIR=${EZIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
EZIO_BUILD_DIR=${EZIO_BUILD_DIR:-$EZIO_SOURCE_DIR/build}
EZIOCTL=$EZIO_BUILD_DIR/cli/ezioctl
EZIOD=$EZIO_BUILD_DIR/daemon/eziod
MAN1=$EZIO_SOURCE_DIR/man/ezioctl.1
MAN8=$EZIO_SOURCE_DIR/man/eziod.8

errors=0
fail() {
    echo "FAIL: $*" >&2
    errors=$((errors + 1))
}
ok() { echo "ok - $*"; }

[ -x "$EZIOCTL" ] || { echo "FAIL: ezioctl is not built: $EZIOCTL" >&2; exit 1; }
[ -f "$MAN1" ] && [ -f "$MAN8" ] || { echo "FAIL: man pages missing" >&2; exit 1; }

# The page's text with roff escapes for '-' undone, so "\-\-wait" reads "--wait".
plain() { sed -e 's/\\-/-/g' -e 's/\\(em/--/g' "$1"; }

# Long and short options in help text: "  -o, --output OUT   ...".
options_of() { grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | tr -d ' ,' | sort -u; }

# documented PAGE_TEXT OPTION: the option appears as a word.
documented() { grep -qE -- "(^|[^a-zA-Z-])$2([^a-zA-Z-]|$)" <<<"$1"; }

# --- ezioctl --------------------------------------------------------------------
man1=$(plain "$MAN1")
help=$("$EZIOCTL" --help)
verbs=$(sed -n '/^Verbs:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }')
[ -n "$verbs" ] || fail "no verbs found in ezioctl --help"
verbs_section=$(sed -n '/^\.SH VERBS/,/^\.SH /p' <<<"$man1")
for v in $verbs; do
    # A verb is documented by a tagged paragraph in VERBS starting with it.
    if grep -A1 '^\.TP' <<<"$verbs_section" | grep -qE "^\.BI? \"?$v( |\"|$)"; then
        ok "verb $v documented"
    else
        fail "verb '$v' (ezioctl --help) has no entry in the VERBS section of man/ezioctl.1"
    fi
done

all_options=$(
    options_of <<<"$help"
    for v in $verbs; do "$EZIOCTL" help "$v" | options_of; done
)
all_options=$(sort -u <<<"$all_options")
options_section=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' <<<"$man1")
for opt in $all_options; do
    if documented "$options_section" "$opt"; then
        ok "ezioctl option $opt documented"
    else
        fail "option '$opt' (ezioctl help) is missing from the OPTIONS section of man/ezioctl.1"
    fi
done
# Reverse: every option the page documents (a .TP/.B/.BR line starting with
# an option in OPTIONS) must exist.
for opt in $(grep -A1 '^\.TP' <<<"$options_section" | grep -oE '^\.B[IR]? "?--?[a-zA-Z][a-zA-Z-]*' |
    grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u); do
    grep -qxF -- "$opt" <<<"$all_options" || fail "man/ezioctl.1 documents '$opt', which ezioctl does not have"
done

# --- eziod ----------------------------------------------------------------------
man8=$(plain "$MAN8")
eziod_options=""
if [ -x "$EZIOD" ]; then
    eziod_options=$("$EZIOD" --help | options_of)
else
    echo "note: $EZIOD is not built; reading options from daemon/main.cpp"
fi
# The source too, so an option is caught even in a build without eziod.
if [ -f "$EZIO_SOURCE_DIR/daemon/main.cpp" ]; then
    src=$(grep -oE 'add_(option|flag)\("[^"]+"' "$EZIO_SOURCE_DIR/daemon/main.cpp" |
        sed -E 's/.*\("//; s/"$//' | tr ',' '\n' | grep -E '^-' || true)
    eziod_options=$(printf '%s\n%s\n--help\n-h\n' "$eziod_options" "$src" | grep -E '^-' | sort -u)
fi
[ -n "$eziod_options" ] || fail "found no eziod options (neither eziod --help nor daemon/main.cpp)"
options8=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' <<<"$man8")
for opt in $eziod_options; do
    if documented "$options8" "$opt"; then
        ok "eziod option $opt documented"
    else
        fail "eziod option '$opt' is missing from the OPTIONS section of man/eziod.8"
    fi
done
for opt in $(grep -A1 '^\.TP' <<<"$options8" | grep -oE '^\.B[IR]? "?--?[a-zA-Z][a-zA-Z-]*' |
    grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u); do
    grep -qxF -- "$opt" <<<"$eziod_options" || fail "man/eziod.8 documents '$opt', which eziod does not have"
done

# --- structure and rendering ------------------------------------------------------
for page in "$MAN1" "$MAN8"; do
    for section in NAME SYNOPSIS DESCRIPTION OPTIONS '"EXIT STATUS"' EXAMPLES '"SEE ALSO"'; do
        grep -q "^\.SH $section\$" "$page" || fail "$(basename "$page") lacks section $section"
    done
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "$(basename "$page") renders with warnings: $warnings"
    ok "$(basename "$page") has the usual sections and renders cleanly"
done
# Every exit status ezioctl documents in its table is in EXIT STATUS.
exit_section=$(sed -n '/^\.SH "EXIT STATUS"/,/^\.SH /p' "$MAN1")
for code in 0 1 2 3 4 5 6 7 130; do
    grep -A1 '^\.TP' <<<"$exit_section" | grep -qx "\.B $code" || fail "ezioctl.1 EXIT STATUS lacks $code"
done

if [ "$errors" -gt 0 ]; then
    echo "$errors problem(s)" >&2
    exit 1
fi
echo PASS
