# Shared by the ablation scripts (sourced): runs the rows asked for, each
# for every seed, JOBS at a time, skipping finished runs and resuming
# stopped ones. The caller sets `rows` ("name|flags" entries), `runs` (the
# folder), `seeds`, `jobs` and a function `command NAME FLAGS SEED DIR` that
# prints the training command of one run (without its log redirection),
# then calls `ablate "$@"` with the row names asked for (none: every row).
ablate() {
  local want=("$@") cmds=() name row r flags s dir
  if ((${#want[@]} == 0)); then
    for row in "${rows[@]}"; do want+=("${row%%|*}"); done
  fi
  for name in "${want[@]}"; do
    row=""
    for r in "${rows[@]}"; do [[ "${r%%|*}" == "$name" ]] && row="$r"; done
    [[ -n "$row" ]] || { echo "unknown row '$name'" >&2; exit 2; }
    flags="${row#*|}"
    for s in $seeds; do
      dir="$(run_dir "$name" "$s")"
      [[ -f "$dir/results.json" ]] && continue
      cmds+=("$(command_of "$name" "$flags" "$s" "$dir") > $dir.log 2>&1")
    done
  done
  mkdir -p "$runs"
  printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} bash -c '{}' || true
  echo "ablation: $(ls "$runs"/*/results.json 2>/dev/null | wc -l) runs finished under $runs"
}
