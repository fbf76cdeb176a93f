#!/bin/sh
# Export script in plain POSIX sh and awk: applies a batch of changes to the
# ;-delimited file (parameter FileName) and prints one result per change.
#
# Honest limits (the Python example has none of them):
# - the file must look like the sample InputFile.txt: every field in double quotes,
#   ";" between them, one row per line;
# - a change with a value that would need a JSON escape (a double quote, a backslash,
#   a control character) is refused with an error result instead of being stored
#   wrongly, and so is an attribute with no column in the file;
# - every column of the file counts as an attribute: a replace empties the columns
#   the change leaves out;
# - the new file is written next to the old one and renamed over it, so a crash
#   leaves one or the other, never half a file; whether the data is on disk before the
#   rename depends on sync(1) accepting a file name (GNU coreutils does).
set -eu

file=${ECMAHOST_PARAM_FileName:-InputFile.txt}
anchor=${ECMAHOST_ANCHOR:?run me from ecmahost: ECMAHOST_ANCHOR is not set}
if [ "${ECMAHOST_PARAM_Delimiter:-;}" != ";" ]; then
    echo "this script only writes ;-delimited files" >&2
    exit 1
fi
case ${ECMAHOST_PARAM_Encoding:-} in
    "" | [Uu][Tt][Ff]8 | [Uu][Tt][Ff]-8) ;;
    *) echo "this script only writes UTF-8 files" >&2; exit 1 ;;
esac
if [ ! -r "$file" ]; then
    echo "$file: file not found (check the FileName parameter)" >&2
    exit 1
fi

new=$(dirname "$file")/.$(basename "$file").export-$$
results=${TMPDIR:-/tmp}/ecmahost-results-$$
trap 'rm -f "$new" "$results"' EXIT
cp -p "$file" "$new"  # the new file keeps the old one's permissions...
chmod u+w "$new"      # ...plus write for its owner, so that it can be written

awk -v anchor="$anchor" -v results="$results" '
function cells(line, out) {
    sub(/\r$/, "", line)
    sub(/^"/, "", line)
    sub(/"$/, "", line)
    return split(line, out, /";"/)
}
# Splits one JSON line into tokens: strings (escapes kept), punctuation, literals.
function tokenize(line,    n) {
    n = 0
    while (line != "") {
        if (match(line, /^[ \t\r]+/)) { line = substr(line, RLENGTH + 1); continue }
        if (!match(line, /^"([^"\\]|\\.)*"/) && !match(line, /^[{}:,]/) &&
            !match(line, /^[-+0-9.eEa-z]+/)) return 0
        token[++n] = substr(line, 1, RLENGTH)
        line = substr(line, RLENGTH + 1)
    }
    return n
}
# The text a JSON value stands for in the file, or "\\" when this script cannot say.
function text(value) {
    if (value == "true") return "True"
    if (value == "false") return "False"
    if (value == "null") return ""
    if (value !~ /^"/) return value
    if (value ~ /\\/) return "\\"
    return substr(value, 2, length(value) - 2)
}
# One change: its op, anchor and attributes, kept under its number c.
function change(line,    n, i, key) {
    n = tokenize(line)
    for (i = 2; i + 2 <= n; i += 4) {
        key = token[i]
        if (key == "\"attributes\"") {
            for (i += 3; token[i] != "}"; i += 4) {
                names[c, ++count[c]] = text(token[i])
                value[c, text(token[i])] = text(token[i + 2])
                if (text(token[i + 2]) == "\\" || text(token[i]) == "\\") problem[c] = "a value holds a quote, backslash or control character, which this script cannot store"
                if (token[i + 3] == "}") break
            }
            i -= 2
        } else if (key == "\"op\"") op[c] = text(token[i + 2])
        else if (key == "\"anchor\"") { raw[c] = token[i + 2]; anchor_of[c] = text(token[i + 2]) }
        else if (key == "\"previous_anchor\"") previous[c] = text(token[i + 2])
    }
    if (anchor_of[c] == "\\" || previous[c] == "\\")
        problem[c] = "the anchor holds a character this script cannot store"
}
function row(c,    i, out) {
    out = ""
    for (i = 1; i <= width; i++) out = out (i > 1 ? ";" : "") "\"" value[c, header[i]] "\""
    return out
}
FILENAME == "-" {
    if (FNR > 1 && $0 !~ /^[ \t\r]*$/) { c = ++changes; change($0) }  # line 1: the header
    next
}
FNR == 1 {
    print
    width = cells($0, header)
    for (i = 1; i <= width; i++) {
        column[header[i]] = i
        if (tolower(header[i]) == tolower(anchor)) anchor_column = i
    }
    for (c = 1; c <= changes; c++) {
        for (k = 1; k <= count[c]; k++)
            if (!(names[c, k] in column) && !problem[c]) problem[c] = "the file has no column " names[c, k]
        if (!problem[c]) wanted[anchor_of[c]] = c
    }
    # A rename finds its row under the previous anchor too (it keeps its place).
    for (c = 1; c <= changes; c++)
        if (!problem[c] && previous[c] != "" && !(previous[c] in wanted)) wanted[previous[c]] = c
    next
}
{
    cells($0, values)
    c = wanted[values[anchor_column]]
    if (!c) { print; next }
    if (done[c]++) next  # later copies of a changed row are dropped
    if (op[c] != "delete") print row(c)
}
END {
    for (c = 1; c <= changes; c++) {
        if (!problem[c] && !done[c] && op[c] != "delete") print row(c)
        if (problem[c]) printf("{\"anchor\": %s, \"status\": \"error\", \"retry\": false, \"message\": \"cannot export: %s\"}\n", raw[c], problem[c]) > results
        else printf("{\"anchor\": %s, \"status\": \"success\"}\n", raw[c]) > results
    }
}
' - "$file" > "$new"

sync "$new" 2>/dev/null || :
mv -f "$new" "$file"
cat "$results"
