# bash_exercise.sh — a bash workload for the preload tests: indexed and associative arrays,
# string operations, subshells, command substitution, pipelines, here-documents, functions.
#
# run_real.sh runs it with `bash --norc --noprofile` once plainly and once under
# libheaptrail-preload.so (so every subshell and coreutils child is preloaded too) and
# requires identical output. Nothing printed depends on timing, PIDs or the environment.
set -u

declare -a numbers=()
for ((i = 0; i < 5000; i++)); do
    numbers+=($(( (i * 7919) % 10007 )))
done
total=0
for n in "${numbers[@]}"; do
    total=$((total + n))
done
echo "array: ${#numbers[@]} elements, sum $total, slice ${numbers[*]:100:5}"
unset 'numbers[10]' 'numbers[20]'
echo "after unset: ${#numbers[@]}"

declare -A colour=()
for ((i = 0; i < 3000; i++)); do
    colour["key$((i % 700))"]+="$((i % 10))"
done
longest=""
for key in "${!colour[@]}"; do
    ((${#colour[$key]} > ${#longest})) && longest=${colour[$key]}
done
echo "assoc: ${#colour[@]} keys, key5=${colour[key5]}, longest ${#longest}"

text=""
for ((i = 0; i < 4000; i++)); do
    text+="word$((i % 13)) "
done
echo "string: ${#text} chars"
replaced=${text//word1/W}
echo "replace: ${#replaced} chars, ${replaced:0:40}"
upper=${text^^}
echo "upper: ${upper:0:24} lower: ${upper,,}" | cut -c1-60
printf -v padded '%-10s|%5d|%x' "abc" 42 255
echo "printf: $padded"
path="/usr/local/lib/heaptrail/libexample.so.1.2"
echo "parts: ${path##*/} ${path%/*} ${path#/usr/} ${path%%.*}"

fib() {
    local n=$1
    if ((n < 2)); then echo "$n"; return; fi
    echo $(($(fib $((n - 1))) + $(fib $((n - 2)))))
}
echo "fib: $(fib 14)"

counted=$(for ((i = 0; i < 200; i++)); do echo "line $((i % 17))"; done |
    sort | uniq -c | sort -rn | head -3)
echo "pipeline:" $counted

subtotal=$( (
    sum=0
    while read -r a b; do sum=$((sum + a * b)); done <<EOF
$(for ((i = 1; i <= 300; i++)); do echo "$i $((i % 9))"; done)
EOF
    echo "$sum"
) )
echo "subshell: $subtotal"

mapfile -t lines < <(printf 'x%d\n' {1..500})
echo "mapfile: ${#lines[@]} ${lines[499]}"

joined=$(IFS=,; echo "${lines[*]:0:8}")
echo "joined: $joined"

for ((round = 0; round < 20; round++)); do
    big=$(printf '%0*d' $((round * 5000)) 0)
    big=${big//0/ab}
done
echo "grown: ${#big}"
