#!/bin/sh
# Import script in plain POSIX sh and awk: every row of the ;-delimited file
# (parameter FileName) as one JSON object per line. Values go out as strings; the host
# types them by the schema (it reads "True"/"False" as Booleans).
#
# Limits: the file must look like the sample InputFile.txt, every field in double
# quotes, ";" between them, one row per line. A field holding a double quote, ";" next
# to a quote, or a line break is not understood (the Python example handles them).
set -eu

file=${ECMAHOST_PARAM_FileName:-InputFile.txt}
anchor=${ECMAHOST_ANCHOR:?run me from ecmahost: ECMAHOST_ANCHOR is not set}
if [ "${ECMAHOST_PARAM_Delimiter:-;}" != ";" ]; then
    echo "this script only reads ;-delimited files" >&2
    exit 1
fi
case ${ECMAHOST_PARAM_Encoding:-} in
    "" | [Uu][Tt][Ff]8 | [Uu][Tt][Ff]-8) ;;
    *) echo "this script only reads UTF-8 files" >&2; exit 1 ;;
esac
if [ ! -r "$file" ]; then
    echo "$file: file not found (check the FileName parameter)" >&2
    exit 1
fi

awk -v anchor="$anchor" '
function cells(line, out) {
    sub(/\r$/, "", line)
    sub(/^"/, "", line)
    sub(/"$/, "", line)
    return split(line, out, /";"/)
}
function json(text,    out, i, c) {
    if (text !~ /[\\"\t\r]/) return "\"" text "\""
    out = ""
    for (i = 1; i <= length(text); i++) {
        c = substr(text, i, 1)
        if (c == "\\" || c == "\"") out = out "\\" c
        else if (c == "\t") out = out "\\t"
        else if (c == "\r") out = out "\\r"
        else out = out c
    }
    return "\"" out "\""
}
FNR == 1 {
    sub(/^\357\273\277/, "")  # a UTF-8 byte order mark
    width = cells($0, names)
    for (i = 1; i <= width; i++) if (tolower(names[i]) == tolower(anchor)) column = i
    if (!column) { print FILENAME ": no " anchor " column in the header" > "/dev/stderr"; exit 1 }
    next
}
/^[ \t\r]*$/ { next }
{
    n = cells($0, values)
    if (values[column] == "") { print FILENAME " line " FNR ": no anchor, skipped" > "/dev/stderr"; next }
    attributes = ""
    for (i = 1; i <= n && i <= width; i++) {
        if (values[i] == "") continue
        attributes = attributes (attributes == "" ? "" : ", ") json(names[i]) ": " json(values[i])
    }
    printf("{\"anchor\": %s, \"attributes\": {%s}}\n", json(values[column]), attributes)
}
' "$file"
