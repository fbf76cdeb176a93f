#!/bin/sh
# Schema script in plain POSIX sh and awk: the object type and attributes of an
# ECMA2Host Schema.xml (parameter SchemaFile, default Schema.xml in the working
# directory, which is the ecmahost configuration's folder).
#
# Limits: this is not an XML parser. It expects the layout of the sample Schema.xml,
# one element per line, and names without quotes or backslashes.
set -eu

schema_file=${ECMAHOST_PARAM_SchemaFile:-Schema.xml}
if [ ! -r "$schema_file" ]; then
    echo "cannot read the schema file $schema_file" >&2
    exit 1
fi

awk '
function inner(line) {
    sub(/^[^>]*>/, "", line)
    sub(/<.*$/, "", line)
    return line
}
function flag(text) {
    text = tolower(inner(text))
    return text == "1" || text == "true"
}
/<SchemaType>/ { named = 0 }
/<SchemaAttribute>/ { in_attribute = 1; name = ""; type = "String"; anchor = 0; multi = 0 }
/<Name>/ {
    if (in_attribute) name = inner($0)
    else if (!named) { printf("{\"object_type\": \"%s\"}\n", inner($0)); named = 1 }
}
/<DataType>/ { type = inner($0) }
/<IsAnchor>/ { anchor = flag($0) }
/<IsMultiValued>/ { multi = flag($0) }
/<\/SchemaAttribute>/ {
    in_attribute = 0
    if (multi) { print "warning: " name " is multi-valued: left out" > "/dev/stderr"; next }
    printf("{\"name\": \"%s\", \"type\": \"%s\", \"anchor\": %s}\n",
           name, type, anchor ? "true" : "false")
}
' "$schema_file"
