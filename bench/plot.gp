# bench/plot.gp — one line per server against connections (log x), for
# bench/render.py. Variables (gnuplot -e): datafile (header row of quoted server
# names, then one row per level; NaN = no value), outfile, term (pngcairo or
# png), ncol (columns in the file), ttl, ylab, logy (1 = log y axis).
if (!exists("term")) term = "pngcairo"
if (term eq "pngcairo") {
    set terminal pngcairo size 960,600 enhanced font "sans,10"
} else {
    set terminal png size 960,600
}
set output outfile
set title ttl
set xlabel "connections"
set ylabel ylab
set logscale x 10
if (logy) set logscale y 10
set yrange [0:*]
if (logy) set yrange [*:*]
set grid xtics ytics mytics
# Up to twelve servers: the default palette repeats after eight colours.
set linetype 9 linecolor rgb "#8c564b" pointtype 8
set linetype 10 linecolor rgb "#17becf" pointtype 10
set linetype 11 linecolor rgb "#7f7f7f" pointtype 12
set linetype 12 linecolor rgb "#bcbd22" pointtype 14
set linetype cycle 12
set key outside right top
set datafile missing "NaN"
set datafile separator "\t"
set offsets graph 0.03, graph 0.03, graph 0.03, 0
plot for [i = 2:ncol] datafile using 1:i with linespoints linewidth 2 pointsize 1.2 title columnhead(i)
