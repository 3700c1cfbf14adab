# house.mk — the house rules checked by make (included from the Makefile).
#
#   make layers   fails on an #include that breaks the layering (scripts/check-layers.sh:
#                 core <- io <- train, core + io <- serve, tools free; public headers in
#                 include/daed/<layer>/ named after their sources) and prints the
#                 functions and files over the length limits (scripts/fnlen.sh) and the
#                 symbols the built library exports without dae_ (scripts/check-symbols.sh)
#   make symbols  fails on a symbol libdaed.a exports without the dae_ prefix
#   make fnlen    fails on a src/ function over 100 lines or a src/ file over 900
#   make hooks    installs scripts/hooks/commit-msg (subjects of at most 72 characters)

.PHONY: layers fnlen symbols hooks

## layers: fail on an #include that breaks the layering; print functions/files over the
## limits and exported symbols without dae_
layers:
	@sh scripts/check-layers.sh
	@sh scripts/fnlen.sh || echo "layers: the lengths above are over the limits (make fnlen fails)"
	@if [ -f $(LIB) ]; then sh scripts/check-symbols.sh $(LIB) || \
	    echo "layers: the symbols above lack dae_ (make symbols fails)"; fi

## symbols: fail on a symbol libdaed.a exports without the dae_ prefix (nm)
symbols: $(LIB)
	@sh scripts/check-symbols.sh $(LIB)

## fnlen: fail on a src/ function over 100 lines or a src/ file over 900 (Universal Ctags)
fnlen:
	@sh scripts/fnlen.sh

## hooks: install scripts/hooks/commit-msg into this clone's git hooks (subjects <= 72)
# git rev-parse --git-path hooks: the clone's hooks folder (shared by its worktrees).
hooks:
	@d=$$(git rev-parse --git-path hooks) && mkdir -p "$$d" && \
	    cp scripts/hooks/commit-msg "$$d/commit-msg" && chmod +x "$$d/commit-msg" && \
	    echo "hooks: $$d/commit-msg installed (subjects of at most 72 characters)"
