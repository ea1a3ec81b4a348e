#!/usr/bin/env bash
# The layers of userspace/ include only what their README allows: common/
# nothing of ours but the contract header, turn/ and client/ only common/,
# daemon/ common/ and turn/ (never client/); the tools and libraries each
# binary links follow from that. Names every include that breaks the rule.
# Usage: tests/test_layers.sh
cd "$(dirname "$0")/../userspace" || exit 1
declare -A allowed=(
	[common]="common"
	[turn]="common turn"
	[client]="common client"
	[daemon]="common turn daemon"
)
bad=0 seen=0
shopt -s nullglob
for layer in "${!allowed[@]}"; do
	for f in "$layer"/*.[ch] "$layer"/*/*.[ch]; do
		while IFS= read -r inc; do
			seen=$((seen + 1))
			dir=${inc%%/*}
			[[ " ${allowed[$layer]} " == *" $dir "* ]] && continue
			echo "FAIL: $f includes \"$inc\": $layer/ may include only ${allowed[$layer]}"
			bad=1
		done < <(sed -n 's/^#include "\([a-z]*\/[^"]*\)".*/\1/p' "$f")
	done
done
# Nothing read would pass an empty tree too.
[ "$seen" -gt 20 ] || { echo "FAIL: only $seen includes found"; exit 1; }
[ $bad = 0 ] && echo "PASS: $seen includes within their layers"
exit $bad
