/**
 * Figures and tables that show themselves in Jupyter: plotly figures
 * (line charts with fitted curves and bands, grouped bars with error bars,
 * loss curves, heatmaps) saved as standalone offline HTML, and results tables.
 */
export {
  type BarGroup,
  groupedBarChart,
  heatmap,
  type LineChartOptions,
  type LineSeries,
  type LossRun,
  lineChart,
  logAxisTicks,
  lossCurves,
  type ScalingSeries,
  scalingLawChart,
  seriesColor,
  smoothSeries,
  tickLabel,
} from "./charts.js";
export { Figure, type FigureBundle, type Layout, type PlotConfig, type Trace } from "./figure.js";
export { plotlyVersion, resetPlotlyInjection } from "./plotly.js";
export { type Cell, Table, type TableOptions } from "./table.js";
