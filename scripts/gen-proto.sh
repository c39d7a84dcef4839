#!/usr/bin/env bash
# Regenerates the committed .pb.go files from their .proto sources.
# Needs protoc (Debian: apt-get install -y protobuf-compiler); the Go plugins
# are pinned in go.mod's tool block.
set -euo pipefail
cd "$(dirname "$0")/.."
gen_go=$(go tool -n protoc-gen-go)
gen_grpc=$(go tool -n protoc-gen-go-grpc)
for proto in $(git ls-files '*.proto' 2>/dev/null || true) $(find . -name '*.proto' -not -path './.git/*' | sed 's|^\./||'); do
  echo "$proto"
done | sort -u | while read -r proto; do
  protoc --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_grpc" \
    --go_out=. --go_opt=paths=source_relative \
    --go-grpc_out=. --go-grpc_opt=paths=source_relative \
    -I . "$proto"
done
