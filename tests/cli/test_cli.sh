#!/usr/bin/env bash
# test_cli.sh STRATA — the command line as a user meets it: stdout, stderr and exit codes
# of every command, the malformed-file messages, and that failures damage nothing.
set -u
STRATA=${1:?usage: test_cli.sh path/to/strata}
SHARED=${STRATA_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
TEST_NAME=cli
. "$(dirname "$0")/lib.sh"
lines() { printf '%s' "$1" | grep -c ''; }

# A safetensors file from a header string and N zero data bytes.
mkst() { # mkst FILE HEADER [N_DATA_BYTES]
  local file=$1 header=$2 n=${3:-0} len=${#2}
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x' \
    $((len & 255)) $((len >> 8 & 255)) $((len >> 16 & 255)) $((len >> 24 & 255)) 0 0 0 0)" >"$file"
  printf '%s' "$header" >>"$file"
  head -c "$n" /dev/zero >>"$file"
}

# --- global options
run "$STRATA" --help
check "--help exits 0 with usage on stdout" test $rc -eq 0
check "--help prints usage" has "$out" "usage: strata"
check "--help lists inspect" has "$out" "inspect"
check "--help writes nothing to stderr" test -z "$err"
run "$STRATA" --version
check "--version" test "$rc" -eq 0 -a "$(head -1 <<<"$out")" = "strata 0.2.0"
check "--version says whether it has MPI" grep -qE '^mpi: (Open MPI v[0-9]|not built in)' <<<"$out"
run "$STRATA" --bogus
check "unknown option exits 2" test $rc -eq 2
check "unknown option: one line on stderr" test "$(lines "$err")" -eq 1
run "$STRATA"
check "missing command exits 2" test $rc -eq 2
run "$STRATA" frobnicate
check "unknown command exits 2" test $rc -eq 2 -a "$(lines "$err")" -eq 1

# --- inspect usage
run "$STRATA" inspect --help
check "inspect --help exits 0" test $rc -eq 0
check "inspect --help describes --json" has "$out" "--json"
run "$STRATA" inspect
check "inspect without PATH exits 2" test $rc -eq 2 -a "$(lines "$err")" -eq 1
run "$STRATA" inspect --frob x
check "inspect bad flag exits 2" test $rc -eq 2
run "$STRATA" inspect "$WORK/nothing-here"
check "inspect missing path exits 1" test $rc -eq 1
check "inspect missing path message" has "$err" "strata: error: $WORK/nothing-here"

# --- malformed files: exit 1, message names file and tensor, file untouched
bad() { # bad NAME EXPECTED_FRAGMENT (file already written as $WORK/NAME.safetensors)
  local file="$WORK/$1.safetensors"
  local before
  before=$(sha256sum "$file")
  run "$STRATA" inspect "$file"
  check "$1: exit 1" test $rc -eq 1
  check "$1: names the file" has "$err" "$file"
  check "$1: says '$2'" has "$err" "$2"
  check "$1: nothing on stdout" test -z "$out"
  check "$1: file unchanged" test "$(sha256sum "$file")" = "$before"
}
printf 'abc' >"$WORK/short.safetensors"; bad short "too short"
printf '\xff\x00\x00\x00\x00\x00\x00\x00{}' >"$WORK/pastend.safetensors"; bad pastend "runs past the end of the file"
printf '\x00\x00\x00\x00\x00\x01\x00\x00{}' >"$WORK/absurd.safetensors"; bad absurd "absurdly large"
mkst "$WORK/json.safetensors" '{"w": {"dtype": "F32",'; bad json "not valid JSON"
mkst "$WORK/dtype.safetensors" '{"layers.0.w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}' 1; bad dtype "tensor 'layers.0.w': unknown dtype 'Q4'"
mkst "$WORK/size.safetensors" '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8; bad size "tensor 'w': shape and dtype F32 need 12 bytes"
mkst "$WORK/bounds.safetensors" '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' 4; bad bounds "tensor 'w': data_offsets [0, 16] run past the end"
mkst "$WORK/overlap.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12; bad overlap "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"
mkst "$WORK/dup.safetensors" '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}' 2; bad dup "duplicate"
mkst "$WORK/overflow.safetensors" '{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'; bad overflow "tensor 'w': element count overflows"
mkdir -p "$WORK/sharded"
mkst "$WORK/sharded/a.safetensors" '{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' 1
printf '{"weight_map":{"x":"a.safetensors","y":"b.safetensors"}}' >"$WORK/sharded/model.safetensors.index.json"
run "$STRATA" inspect "$WORK/sharded"
check "index naming a missing shard: exit 1" test $rc -eq 1
check "index naming a missing shard: message" has "$err" "shard 'b.safetensors' (holding tensor 'y') does not exist"
printf '{"weight_map":{"x":"a.safetensors","y":"a.safetensors"}}' >"$WORK/sharded/model.safetensors.index.json"
run "$STRATA" inspect "$WORK/sharded"
check "index tensor absent from its shard" has "$err" "tensor 'y' is listed in shard 'a.safetensors' but that shard does not contain it"

# --- generate, inspect (text and JSON), demo
run "$STRATA" generate --arch qwen3_moe --layers 2 -o "$WORK/moe"
check "generate exits 0" test $rc -eq 0
run "$STRATA" generate --arch qwen3_moe -o "$WORK/moe"
check "generate refuses to overwrite" test $rc -eq 1
check "generate says it exists" has "$err" "already exists"
run "$STRATA" generate --arch gpt2 -o "$WORK/x"
check "generate unknown arch exits 2" test $rc -eq 2
run "$STRATA" inspect "$WORK/moe"
check "inspect synthetic MoE" test $rc -eq 0
check "inspect shows the architecture" has "$out" "Qwen3MoeForCausalLM (qwen3_moe)"
check "inspect shows MoE" has "$out" "8 experts, top-2"
check "inspect shows per-layer tables" has "$out" "model.layers.1.mlp.experts.7.down_proj.weight"
check "inspect shows totals" has "$out" "BF16          69 tensors"
run "$STRATA" inspect --json --stats "$WORK/moe"
check "inspect --json exits 0" test $rc -eq 0
check "inspect --json is an object" test "${out:0:1}" = "{"
check "inspect --json architecture" has "$out" '"model_type": "qwen3_moe"'
check "inspect --json stats" has "$out" '"nan": 0'
cp "$WORK/moe/config.json" "$WORK/config.bak"
sed -i 's/"qwen3_moe"/"gpt_oss"/' "$WORK/moe/config.json"
run "$STRATA" inspect "$WORK/moe"
check "unsupported architecture: exit 1" test $rc -eq 1
check "unsupported architecture: named" has "$err" "architecture 'gpt_oss' is not supported"
cp "$WORK/config.bak" "$WORK/moe/config.json"

run "$STRATA" demo -o "$WORK/demo"
check "demo exits 0" test $rc -eq 0
check "demo describes the dense model in a line" has "$out" "llama-dense: LlamaForCausalLM, 4 layers, hidden 128"
check "demo describes the MoE model in a line" has "$out" "qwen3-moe: Qwen3MoeForCausalLM, 4 layers, hidden 128, vocab 512, 8 experts (top 2)"
check "  and prints no tensor tables" bash -c "! grep -q 'model.layers.0' '$WORK/out'"
check "demo quantizes the dense model and compares perplexities" has "$out" "perplexity on 2048 synthetic tokens: bf16"
check "demo writes the quantized model" test -f "$WORK/demo/llama-dense-fp8/hf_quant_config.json"
# stories260K (data/demo): bf16, FP8 and NVFP4 rows; the numbers as strata eval gives them.
check "demo quantizes the trained stories260K to fp8 and nvfp4" \
  test -f "$WORK/demo/stories260K-fp8/hf_quant_config.json" -a -f "$WORK/demo/stories260K-nvfp4/hf_quant_config.json"
row() { grep -E "^  $1 " "$WORK/out"; }
check "  a bf16 row, PPL ratio 1, KLD 0" bash -c "grep -Eq '^  bf16 +[0-9.]+ ± [0-9.]+ +1 +0 +100 %' '$WORK/out'"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
"$STRATA" -q eval "$WORK/demo/stories260K-nvfp4" --base "$SRC/data/demo/stories260K" \
  --text "$SRC/data/demo/tinystories-eval.txt" --window 256 --json >"$WORK/nvfp4.json" 2>/dev/null
kld=$(grep -o '"kld": {"value": [0-9.e-]*' "$WORK/nvfp4.json" | grep -o '[0-9.e-]*$')
check "  the nvfp4 row's KLD ($(row nvfp4 | awk '{print $8}')) is strata eval's ($kld)" \
  awk -v a="$(row nvfp4 | awk '{print $8}')" -v b="${kld:-x}" 'BEGIN { exit !(b > 0 && a - b < 1e-6 && b - a < 1e-6) }'
fp8=$(row fp8 | awk '{print $8}') nvfp4=$(row nvfp4 | awk '{print $8}')
check "  FP8 ($fp8) loses less than NVFP4 ($nvfp4), both more than 0" \
  awk -v a="${fp8:-0}" -v b="${nvfp4:-0}" 'BEGIN { exit !(a > 0 && a < b) }'
check "  and writes the NVFP4 report with the comparison" \
  grep -q 'mean KL divergence' "$WORK/demo/stories260K-nvfp4-report.html"
check "  whose path it prints" has "$out" "$WORK/demo/stories260K-nvfp4-report.html"
cp "$WORK/demo/qwen3-moe/model.safetensors" "$WORK/first.safetensors"
run "$STRATA" demo -o "$WORK/demo"
check "demo again without --force exits 1" test $rc -eq 1
check "demo hints at --force" has "$err" "--force"
# The sanitizer build runs the whole demo once (two quantizations and evaluations of stories260K
# cost it a minute each time); the release build runs it again over the first.
if [[ ${STRATA_SANITIZE_BUILD:-0} == 1 ]]; then
  "$STRATA" -q generate --arch qwen3_moe -o "$WORK/moe-again" >/dev/null
  check "demo output is deterministic (the MoE model as generate writes it)" \
    cmp -s "$WORK/first.safetensors" "$WORK/moe-again/model.safetensors"
else
  run "$STRATA" demo --force -o "$WORK/demo"
  check "demo --force exits 0" test $rc -eq 0
  check "demo output is deterministic" cmp -s "$WORK/first.safetensors" "$WORK/demo/qwen3-moe/model.safetensors"
fi

# --- eval
run "$STRATA" eval --help
check "eval --help exits 0" test $rc -eq 0
check "eval --help describes --tokens" has "$out" "--tokens FILE"
run "$STRATA" eval
check "eval without MODEL_DIR exits 2" test $rc -eq 2 -a "$(lines "$err")" -eq 1
run "$STRATA" -q generate -o "$WORK/evalmodel" --layers 2
run "$STRATA" eval "$WORK/evalmodel"
check "eval without --tokens or --text exits 2" test $rc -eq 2
check "eval without input says what to give" has "$err" "give one of --text FILE or --tokens FILE"
run "$STRATA" eval "$WORK/evalmodel" --text "$WORK/whatever.txt" --tokens "$WORK/ids.txt"
check "eval with both --text and --tokens exits 2" test $rc -eq 2 -a "$(lines "$err")" -eq 1
printf 'some text\n' >"$WORK/some.txt"
run "$STRATA" eval "$WORK/evalmodel" --text "$WORK/some.txt"
check "eval --text on a model without tokenizer.json exits 1" test $rc -eq 1
check "eval --text names the missing tokenizer.json" has "$err" "$WORK/evalmodel/tokenizer.json"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/none.txt"
check "eval missing token file exits 1" test $rc -eq 1
check "eval missing token file is named" has "$err" "$WORK/none.txt"
printf '1 2 x 4\n' >"$WORK/bad.txt"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/bad.txt"
check "eval non-integer token exits 1" test $rc -eq 1
check "eval non-integer token names file and position" has "$err" "$WORK/bad.txt: token 2"
printf '1\0002 3' >"$WORK/nul.txt"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/nul.txt"
check "eval token text with a NUL byte exits 1" test $rc -eq 1
check "eval names the NUL byte" has "$err" "NUL byte"
seq 1 200 | tr '\n' ' ' >"$WORK/ids.txt"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/ids.txt" --window 64
check "eval exits 0" test $rc -eq 0
check "eval prints the perplexity" has "$out" "perplexity "
check "eval reports windows on stderr" has "$err" "3 windows, 189 predicted tokens"
ppl_bf16=$out
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/ids.txt" --window 64 --json --fp32 --threads 1
check "eval --json" has "$out" '"windows": 3'
check "eval --fp32 is reported" has "$out" '"precision": "fp32"'
run "$STRATA" -q eval "$WORK/evalmodel" --tokens "$WORK/ids.txt" --window 64 --memory-budget 1
check "eval result does not depend on the memory budget" test "$out" = "$ppl_bf16"
python3 -c 'print([5, 600000])' >"$WORK/oov.json" 2>/dev/null || printf '[5, 600000]\n' >"$WORK/oov.json"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/oov.json" --window 2
check "eval token outside the vocabulary exits 1" test $rc -eq 1
check "eval names the out-of-vocabulary token" has "$err" "token 1 is id 600000, outside the model's vocabulary [0, 512)"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/ids.txt" --window 4096
check "eval window beyond the rope limit exits 1" test $rc -eq 1
check "eval names max_position_embeddings" has "$err" "exceeds max_position_embeddings 2048"
run "$STRATA" eval "$WORK/evalmodel" --tokens "$WORK/ids.txt" --window 512
check "eval with too few tokens exits 1" test $rc -eq 1
check "eval says how many tokens there are" has "$err" "window of 512 tokens; got 200"

# --- the real models in ../shared
if [[ -d "$SHARED/models" ]]; then
  for model in stories260K-hf stories260K-hf-bf16 llama-19m qwen3moe-47m stories260K-moe-mixtral-synthetic; do
    run "$STRATA" inspect "$SHARED/models/$model"
    check "inspect $model exits 0" test $rc -eq 0
    check "inspect $model: nothing unexpected" has "$out" "unexpected    0"
  done
  run "$STRATA" inspect "$SHARED/models/llama-19m"
  check "llama-19m parameter count" has "$out" "parameters    18,880,896"
  run "$STRATA" inspect "$SHARED/models/stories260K-moe-mixtral-synthetic"
  check "mixtral synthetic: 4 experts" has "$out" "4 experts, top-2"
  run "$STRATA" inspect "$SHARED/models/stories260K"
  check "llama2.c directory: exit 1" test $rc -eq 1
  check "llama2.c directory: says why" has "$err" "no *.safetensors files"
  printf '[1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338]' >"$WORK/story.json"
  run "$STRATA" eval "$SHARED/models/stories260K-hf" --tokens "$WORK/story.json" --window 17 --fp32
  check "eval stories260K on its own greedy text exits 0" test $rc -eq 0
  ppl=${out#perplexity }
  check "greedy text has a low perplexity (< 3)" awk -v p="$ppl" 'BEGIN { exit !(p < 3) }'

  # --- tokenize, and eval on text
  run "$STRATA" tokenize --help
  check "tokenize --help exits 0" test $rc -eq 0
  check "tokenize --help describes --calib" has "$out" "--calib-samples N"
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf"
  check "tokenize without a mode exits 2" test $rc -eq 2 -a "$(lines "$err")" -eq 1
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --calib "$WORK/story.txt"
  check "tokenize --calib without sizes exits 2" test $rc -eq 2
  check "tokenize --calib says which sizes" has "$err" "--calib-samples N and --calib-seq T"
  printf 'Once upon a time, there was a little girl named Lily.' >"$WORK/story.txt"
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --text "$WORK/story.txt"
  check "tokenize --text exits 0" test $rc -eq 0
  check "tokenize --text starts with BOS" has "$out" "1 403 407 261 378 "
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --text "$WORK/story.txt" --no-special -o "$WORK/story.bin"
  check "tokenize -o FILE.bin exits 0" test $rc -eq 0
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --decode "$WORK/story.bin"
  check "decode gives the text back" test "$out" = "$(cat "$WORK/story.txt")"
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --text "$WORK/story.txt" -o "$WORK/story.txt"
  check "tokenize -o its own input is refused (exit 1)" test $rc -eq 1
  check "  naming it" has "$err" "refusing to write $WORK/story.txt: it is an input of this run"
  check "  and the text is intact" grep -q "Once upon a time" "$WORK/story.txt"
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --decode "$WORK/story.bin" -o "$WORK/story.bin"
  check "decode -o its own ids is refused" test $rc -eq 1
  run "$STRATA" tokenize "$SHARED/models/stories260K-hf" --decode "$WORK/story.bin" -o "$WORK/decoded.txt"
  check "decode -o writes the text" test "$(cat "$WORK/decoded.txt")" = "$(cat "$WORK/story.txt")"
  run "$STRATA" tokenize "$SHARED/tokenizers/qwen3/tokenizer.json" --text "$WORK/story.txt"
  check "tokenize takes a tokenizer.json path" test $rc -eq 0
  check "qwen3 adds no BOS" has "$out" "12522 5193 264 882 11"
  printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$WORK/wp.json"
  run "$STRATA" tokenize "$WORK/wp.json" --text "$WORK/story.txt"
  check "an unsupported tokenizer exits 1" test $rc -eq 1
  check "an unsupported tokenizer is named" has "$err" 'model type "WordPiece" is not supported'
  run "$STRATA" tokenize "$SHARED/models/llama-19m" --calib "$SHARED/data/calib-groups-merged/groups_merged.txt" \
    --calib-samples 8 --calib-seq 64 --seed 1 -o "$WORK/calib.json"
  check "tokenize --calib exits 0" test $rc -eq 0
  check "tokenize --calib reports the dataset" has "$err" "documents"
  check "tokenize --calib writes 8 windows" test "$(grep -c '' "$WORK/calib.json")" -eq 8
  run "$STRATA" tokenize "$SHARED/models/llama-19m" --calib "$WORK/story.txt" --calib-samples 8 --calib-seq 64
  check "too little calibration text exits 1" test $rc -eq 1
  check "too little calibration text says how much there is" has "$err" "tokens make 0 windows of 64 tokens"
  printf '{"content": "x"}\n' >"$WORK/d.jsonl"
  run "$STRATA" tokenize "$SHARED/models/llama-19m" --calib "$WORK/d.jsonl" --calib-samples 1 --calib-seq 2
  check "JSONL without the field exits 1" test $rc -eq 1
  check "JSONL without the field names file, line and field" has "$err" "$WORK/d.jsonl:1: no \"text\" field"
  run "$STRATA" tokenize "$SHARED/models/llama-19m" --calib "$WORK/d.jsonl" --calib-samples 1 --calib-seq 2 \
    --calib-field content
  check "--calib-field names the field" test $rc -eq 0
  run "$STRATA" eval "$SHARED/models/stories260K-hf" --text "$WORK/story.txt" --window 8 --fp32
  check "eval --text exits 0" test $rc -eq 0
  check "eval --text reports its windows" has "$err" "2 windows, 14 predicted tokens"
else
  echo "SKIPPED: $SHARED/models does not exist; CLI checks on the shared models did not run"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
