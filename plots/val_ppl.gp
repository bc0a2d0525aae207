# val_ppl.gp — validation perplexity vs training step, one line per scheme (mean over the
# scheme's seeds), log y. Run by `normbench report` (src/report.c) in DIR/report with -e:
# term, out, data (val_ppl.tsv: one index block per scheme; columns step, ppl, loss, n),
# plotdir, n (blocks), t<i>/c<i>/L<i> (title, colour, layers of block i).
W = 900; H = 600
load plotdir.'/style.gp'
set title 'Validation perplexity during training'
set xlabel 'training step (optimizer updates)'
set ylabel 'validation perplexity, exp(loss in nats)  [log scale]'
set logscale y
set key outside right top
plot for [i=1:n] data index (i-1) using 1:2 with linespoints lt lt_of(i) title title_of(i)
