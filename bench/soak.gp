# bench/soak.gp — the plot of one bench/soak.sh run (gnuplot, gnuplot-nox).
#   gnuplot -e "samples='bench/results/soak-....tsv'; out='docs/img/soak.png'; title='...'" bench/soak.gp
# Four panels over the run's minutes: RSS (MiB), fds and open connections,
# server CPU (% of one CPU), throughput (MB/s echoed).
if (!exists("samples")) print "bench/soak.gp: set samples='FILE.tsv'"; exit
if (!exists("out")) out = 'soak.png'
if (!exists("title")) title = 'weft-echo soak'
set terminal pngcairo size 1000,1000 font ',10'
set output out
set datafile separator "\t"
set datafile commentschars "#"
set key outside top right horizontal samplen 2
set grid
set xlabel 'minutes'
set multiplot layout 4,1 title title
set ylabel 'RSS (MiB)'
set yrange [0:*]
plot samples using ($1/60):($2/1024) skip 1 with lines lw 1.5 title 'weft-echo RSS'
set ylabel 'count'
plot samples using ($1/60):3 skip 1 with lines title 'fds', \
     '' using ($1/60):4 skip 1 with lines title 'open connections'
set ylabel 'CPU (%)'
plot samples using ($1/60):6 skip 1 with lines title 'server CPU, % of one CPU'
set ylabel 'MB/s'
plot samples using ($1/60):($7/1e6) skip 1 with lines title 'bytes echoed (admin socket)'
unset multiplot
