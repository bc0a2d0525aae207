# style.gp — the look shared by normbench's figures, loaded by every plots/*.gp script:
# the terminal (pngcairo or svg, from `term`), fonts, and one colour per scheme.
#
# Expects: term ('png' or 'svg'), out (output file name), W, H (size in pixels).
# Colours: linetype k is the scheme at position k of the scheme table (1 pre_ln, 2 post_ln,
# 3 deepnorm, 4 mix_ln, 5 lns; later ones 6, 7, ...), so a scheme keeps its colour in
# every figure. Titles are plain text (noenhanced): scheme names keep their underscores.
set encoding utf8
if (term eq 'svg') {
    set terminal svg size W,H dynamic noenhanced font 'Sans,13' background rgb 'white'
} else {
    set terminal pngcairo size W,H noenhanced font 'Sans,11' background rgb 'white'
}
set output out
set linetype 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.7
set linetype 2 lc rgb '#d62728' lw 2 pt 5 ps 0.7
set linetype 3 lc rgb '#2ca02c' lw 2 pt 9 ps 0.8
set linetype 4 lc rgb '#ff7f0e' lw 2 pt 11 ps 0.8
set linetype 5 lc rgb '#9467bd' lw 2 pt 13 ps 0.8
set linetype 6 lc rgb '#8c564b' lw 2 pt 7 ps 0.7
set linetype 7 lc rgb '#e377c2' lw 2 pt 5 ps 0.7
set linetype 8 lc rgb '#7f7f7f' lw 2 pt 9 ps 0.8
set linetype cycle 8
set grid lc rgb '#dddddd' lw 1
set border lc rgb '#444444'
set key box lc rgb '#bbbbbb' samplen 2.5 spacing 1.1
# sequential palette (viridis) for heatmaps and step colouring
set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')
# i-th scheme of the data file: title, linetype, layer count
title_of(i) = value(sprintf('t%d', i))
lt_of(i) = int(value(sprintf('c%d', i)))
L_of(i) = int(value(sprintf('L%d', i)))
# tic spacing along a layer axis of L layers
tic_step(L) = L > 64 ? 8 : L > 32 ? 4 : L > 16 ? 2 : 1
