# plot.gp — one bench figure across commits, from a results file (bench/results/<device>.tsv).
#
#   gnuplot -e "file='bench/results/DEVICE.tsv'; op='train_step'; figure='tokens_per_s'; \
#               match='llama71m'; out='tokens.png'" bench/plot.gp
#
# Plots, in file order (one point per run, labelled by commit), the median with a min..max
# error bar of every row whose op and figure match exactly and whose shape contains `match`
# (default: every shape; several shapes then share the plot). Columns of the results file:
# commit date op shape figure unit median min max (tab-separated, '#' comments).
if (!exists("file")) file = 'bench/results/cpu.tsv'
if (!exists("op")) op = 'train_step'
if (!exists("figure")) figure = 'tokens_per_s'
if (!exists("match")) match = ''
if (!exists("out")) out = 'bench-'.op.'-'.figure.'.png'

set terminal pngcairo size 1000,500 noenhanced
set output out
set datafile separator "\t"
set datafile commentschars "#"
set title sprintf("%s %s %s  (%s)", op, figure, match, file)
set ylabel figure
set xtics rotate by -45 font ",8"
set grid ytics
set key off
set offsets 0.5, 0.5, 0, 0
rows = sprintf("< awk -F'\t' '$1 !~ /^#/ && $3 == \"%s\" && $5 == \"%s\" && (\"%s\" == \"\" || index($4, \"%s\"))' '%s'", op, figure, match, match, file)
plot rows using 0:7:8:9:xtic(1) with yerrorbars pt 7 lc rgb "#1f77b4"
