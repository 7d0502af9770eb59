# Oracle for analysis/stats/bradley_terry.py (tie_model='davidson', position=TRUE), with base R's glm only.
# Davidson's model with an order effect, P(left) : P(right) : P(tie) = exp(d/2) : exp(-d/2) : nu with
# d = beta_left + alpha - beta_right, is a multinomial logit; its MLE equals that of the Poisson log-linear model with
# one nuisance intercept per ordered pair (the multinomial-Poisson equivalence), which glm fits by IRLS.
# Usage: Rscript davidson_fit.R counts.csv out.json REFERENCE
# counts.csv: left,right,n_left,n_right,n_tie (one row per ordered pair; left = the item shown on the left).
suppressPackageStartupMessages(library(jsonlite))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
ref <- args[3]
items <- sort(unique(c(d$left, d$right)))
others <- setdiff(items, ref)
rows <- list()
for (r in seq_len(nrow(d))) {
  for (o in c("left", "right", "tie")) {
    sgn <- switch(o, left = 0.5, right = -0.5, tie = 0)
    x <- setNames(numeric(length(others)), others)
    if (d$left[r] %in% others) x[d$left[r]] <- x[d$left[r]] + sgn
    if (d$right[r] %in% others) x[d$right[r]] <- x[d$right[r]] - sgn
    rows[[length(rows) + 1]] <- data.frame(
      count = d[[paste0("n_", o)]][r], pair = r, t(x), position = sgn, tie = as.numeric(o == "tie"),
      check.names = FALSE)
  }
}
long <- do.call(rbind, rows)
long$pair <- factor(long$pair)
names(long) <- make.names(names(long))
f <- as.formula(paste("count ~ 0 + pair +", paste(make.names(others), collapse = " + "), "+ position + tie"))
fit <- glm(f, family = poisson, data = long, control = glm.control(epsilon = 1e-14, maxit = 100))
co <- summary(fit)$coefficients
get <- function(n) list(estimate = unname(co[n, 1]), se = unname(co[n, 2]))
out <- list(
  items = setNames(lapply(make.names(others), get), others),
  position = get("position"),
  log_nu = get("tie"),
  converged = fit$converged
)
write(toJSON(out, auto_unbox = TRUE, digits = NA), args[2])
