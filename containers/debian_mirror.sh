#!/usr/bin/env bash
# Prints the Debian mirror this machine's apt already uses, for debootstrap's base image:
# $DEBIAN_MIRROR when set, else the first enabled `deb` source whose suite is a release
# (not -security) from the deb822 files /etc/apt/sources.list.d/*.sources (their URIs:),
# else from the one-line `deb` entries of /etc/apt/sources.list and sources.list.d/*.list.
# The bundle names no package host of its own: every machine brings its mirror with it.
#   containers/debian_mirror.sh            (APT_DIR=/other/etc/apt for another apt tree)
set -euo pipefail
apt_dir="${APT_DIR:-/etc/apt}"
if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    echo "$DEBIAN_MIRROR"
    exit 0
fi

deb822_mirror() {
    # One stanza per blank-line-separated block; keys are case-insensitive.
    awk '
        function flush() {
            if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no" \
                && suites !~ /-security/) {
                split(uris, list, /[ \t]+/)
                for (i = 1; i in list; i++) if (list[i] != "") { print list[i]; found = 1; exit }
            }
            uris = types = suites = enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
            key = tolower($0); sub(/:.*/, "", key); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
            if (key == "uris") uris = value
            else if (key == "types") types = value
            else if (key == "suites") suites = value
            else if (key == "enabled") enabled = value
        }
        END { if (!found) flush() }
    ' "$@"
}

one_line_mirror() {
    # deb [options] URI suite components...
    awk '
        $1 != "deb" { next }
        {
            f = 2
            if ($2 ~ /^\[/) { while (f <= NF && $f !~ /\]$/) f++; f++ }
            if ($(f + 1) ~ /-security/) next
            print $f; exit
        }
    ' "$@"
}

shopt -s nullglob
sources=("$apt_dir"/sources.list.d/*.sources)
lists=()
[[ -f "$apt_dir/sources.list" ]] && lists+=("$apt_dir/sources.list")
lists+=("$apt_dir"/sources.list.d/*.list)
mirror=""
((${#sources[@]})) && mirror="$(deb822_mirror "${sources[@]}" | head -n 1)"
[[ -z "$mirror" ]] && ((${#lists[@]})) && mirror="$(one_line_mirror "${lists[@]}" | head -n 1)"
if [[ -z "$mirror" ]]; then
    echo "no Debian mirror: set DEBIAN_MIRROR, or configure apt ($apt_dir/sources.list.d/*.sources or $apt_dir/sources.list)" >&2
    exit 2
fi
echo "$mirror"
