"""The examples at the end of each subcommand's ``--help`` (and of ``makemore --help``)."""

EXAMPLES = {
    "train": """examples:
  makemore train -o runs/names                       # default model on the built-in corpus
  makemore train -i words.txt -o runs/ngram --model ngram --order 3 --smoothing kneser-ney
  makemore train -i names.txt -o runs/l3 --preset lecture3
  makemore train -o runs/mlp --model mlp --n-embd 16 --n-hidden 256 --steps 20000 --lr 0.01
  makemore train --resume -o runs/mlp                # continue an interrupted run exactly
  makemore train -o runs/bn --model bn-mlp --optimizer sgd --lr 0.1 --schedule step --backward manual
  makemore train -i builtin:names-by-sex -o runs/by-sex --time 5m   # a model conditional on the label
  makemore train -i langs.tsv --labelled -o runs/langs               # LABEL<TAB>ITEM lines
  makemore train -i people.csv --item-column name --label-column country -o runs/people""",
    "sample": """examples:
  makemore sample runs/names -n 20 --new-only
  makemore sample runs/names --prefix ma --temperature 0.8 --top-k 10 --seed 7 -o names.txt
  makemore sample runs/names --suffix a --contains ar --exclude-chars qxz --max-len 8
  makemore sample runs/names --regex '^[^aeiou]+$' --time-limit 60 --scores | sort -t$'\t' -k2 -n
  makemore sample runs/names --similar-to emma -n 10 --pool 2000
  makemore sample runs/by-sex --label f --suffix ella -n 10 --scores
  makemore sample runs/fantasy --label elf=0.7 --label dwarf=0.3 -n 20

constraints: --exclude-chars, --prefix, --min-len and --max-len hold by construction (the
characters are never drawn, the lengths are forced). --suffix, --contains, --not-contains and
--regex (Python's re.search: anchor it with ^ and $) keep the items that match from larger
batches, within a budget: --max-tries draws (default 1,000 per item, at least 100,000) and
--time-limit seconds (default 30 with such a constraint). When it runs out, the items found
are printed and one line on stderr says how many were asked, found and drawn: the exit code
is 0 if at least one item was found, else 2. A request no item can meet (a character the
model never saw, an excluded character in --suffix) is refused before anything is made.

standard output holds the items only; standard error says the rest. Without --seed each call
draws a new seed and prints it ("makemore: seed 123456 (repeat with --seed 123456)"), so any
list can be made again. When some of the items are in the training file, a line says how many
("makemore: 7 of 20 are items of the training file (--new-only leaves them out)"); --scores
marks each item new or known instead.""",
    "score": """examples:
  makemore score runs/names emma zzzx
  makemore score runs/bigram --detail andrej
  makemore score runs/names - < words.txt
  makemore score runs/names --input held-out.txt > scores.tsv
  makemore score runs/by-sex --classify emma liam    # P(label | item) for every label
  makemore score runs/by-sex --label m --detail emma""",
    "eval": """examples:
  makemore eval runs/names
  makemore eval runs/names --input held-out.txt     # NLL, perplexity and bits per character of a file
  makemore eval runs/names --samples 10000 --seed 0  # unique / in train / new, length and char TV, samples' NLL""",
    "plot": """examples:
  makemore plot bigram runs/names -o bigram.png
  makemore plot loss runs/names -o loss.png
  makemore plot embedding runs/names -o emb.png
  makemore plot activations runs/names -o act.png""",
    "ladder": """examples:
  makemore ladder -o ladder                          # the built-in names, 10 minutes, every rung
  makemore ladder -i words.txt -o ladder-words --time 30m
  makemore ladder -i train.txt --dev-input val.txt --test-input test.txt -o ladder-split
  makemore ladder -o quick --time 1m --rung ngram-3 --rung mlp --rung lstm

Each rung trains in DIR/RUNG (a run directory like train's: sample, score, export it); the
report is DIR/report.md with DIR/dev-nll.png. Run it again to continue where it stopped.""",
    "lr-find": """examples:
  makemore lr-find --model mlp -o lr.png
  makemore lr-find -i words.txt --model bn-mlp --optimizer sgd --steps 500 -o lr.png""",
    "datasets": "examples:\n  makemore datasets",
    "models": "examples:\n  makemore models",
    "serve": """examples:
  makemore serve runs/default                        # then open http://127.0.0.1:8000/
  makemore serve runs/default runs/by-sex --port 8080
  makemore serve runs/default --host 0.0.0.0         # reachable from other machines (every request needs the printed token)

The page generates (every control of 'sample'), scores a typed item character by character
(P(label | item) for labelled runs) and shows each run's description, bigram counts and loss
curve. Its JSON API (GET /api/runs, /api/info, /api/plot/bigram, /api/plot/loss; POST
/api/generate, /api/score) is described in the README. Ctrl-C stops it.""",
    "gradcheck": """examples:
  makemore gradcheck
  makemore gradcheck --dtype float32 --batch-size 64 --seed 1""",
}
TOP_LEVEL_EXAMPLES = """examples:
  makemore train -o runs/names && makemore sample runs/names -n 20 --new-only
  makemore score runs/names --detail emma
  makemore COMMAND --help                            # options and examples of one command"""
