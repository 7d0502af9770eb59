# Oracle for analysis/stats/lmm.py: fit y ~ 0 + <fixed columns> + (1|g1) + ... with lme4 + lmerTest (Satterthwaite)
# and write the numbers as JSON.
# Usage: Rscript lmer_fit.R data.csv out.json [REML=1] [TIGHT=0] [contrast: comma-separated weights over fixed columns]
#        [KR=0]   (KR=1 adds Kenward-Roger results from pbkrtest via lmerTest, under "kr")
#        [F-test rows: "a,b,c;d,e,f"]   (contestMD, Satterthwaite, and Kenward-Roger when KR=1)
# TIGHT=1 runs lme4's default optimiser (nloptwrap BOBYQA) to tolerances 1e-12 instead of its defaults, so that
# the oracle sits at the REML optimum to ~1e-9 (the defaults stop ~1e-5 away in theta, see the test module).
# data.csv: column y, fixed-effect columns f_<name> (the full design, intercept included), grouping columns g_<name>.
# Batch: Rscript lmer_fit.R jobs.txt   (one job a line, the same arguments separated by spaces; R starts once)
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})
run_job <- function(args) {
  d <- read.csv(args[1], check.names = FALSE)
  reml <- if (length(args) >= 3) as.integer(args[3]) == 1 else TRUE
  fixed <- grep("^f_", names(d), value = TRUE)
  grp <- grep("^g_", names(d), value = TRUE)
  for (g in grp) d[[g]] <- factor(d[[g]])
  form <- as.formula(paste("y ~ 0 +", paste(sprintf("`%s`", fixed), collapse = " + "), "+",
                           paste(sprintf("(1 | %s)", grp), collapse = " + ")))
  tight <- length(args) >= 4 && as.integer(args[4]) == 1
  ctrl <- if (tight) {
    lmerControl(optimizer = "nloptwrap",
                optCtrl = list(ftol_abs = 1e-13, xtol_abs = 1e-12, ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5))
  } else lmerControl()
  st_fit <- system.time(m <- lmer(form, data = d, REML = reml, control = ctrl))
  st_sum <- system.time(co <- summary(m)$coefficients)
  cpu <- function(st) sum(st[c("user.self", "sys.self")])
  vc <- as.data.frame(VarCorr(m))
  vcomp <- setNames(as.list(vc$vcov), sub("^g_", "", sub("^Residual$", "residual", vc$grp)))
  out <- list(
    versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    lmerTest = as.character(packageVersion("lmerTest")),
                    numDeriv = as.character(packageVersion("numDeriv"))),
    reml = reml, tight = tight,
    names = sub("^f_", "", rownames(co)),
    coef = unname(co[, "Estimate"]), se = unname(co[, "Std. Error"]), df = unname(co[, "df"]),
    t = unname(co[, "t value"]), p = unname(co[, "Pr(>|t|)"]),
    variance_components = vcomp,
    theta = setNames(as.list(getME(m, "theta")), sub("^g_", "", sub(".\\(Intercept\\)$", "", names(getME(m, "theta"))))),
    sigma = sigma(m),
    reml_criterion = if (reml) REMLcrit(m) else deviance(m),
    singular = isSingular(m),
    n_obs = nobs(m),
    optimizer_messages = m@optinfo$conv$lme4$messages,
    seconds = list(lmer = st_fit[["elapsed"]], summary = st_sum[["elapsed"]], lmer_cpu = cpu(st_fit),
                   summary_cpu = cpu(st_sum))
  )
  if (length(args) >= 5) {
    L <- as.numeric(strsplit(args[5], ",")[[1]])
    ct <- contest1D(m, L, confint = TRUE)
    out$contrast <- list(L = L, estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df, t = ct$`t value`,
                         p = ct$`Pr(>|t|)`, ci_low = ct$lower, ci_high = ct$upper)
  }
  ftab <- function(x) list(f = x[["F value"]], ndf = x[["NumDF"]], ddf = x[["DenDF"]], p = x[["Pr(>F)"]])
  if (length(args) >= 7) {
    Lf <- do.call(rbind, lapply(strsplit(args[7], ";")[[1]], function(r) as.numeric(strsplit(r, ",")[[1]])))
    out$ftest <- ftab(contestMD(m, Lf))
  }
  if (length(args) >= 6 && as.integer(args[6]) == 1) {
    kco <- summary(m, ddf = "Kenward-Roger")$coefficients
    out$kr <- list(coef = unname(kco[, "Estimate"]), se = unname(kco[, "Std. Error"]), df = unname(kco[, "df"]),
                   t = unname(kco[, "t value"]), p = unname(kco[, "Pr(>|t|)"]),
                   pbkrtest = as.character(packageVersion("pbkrtest")))
    if (length(args) >= 5) {
      kc <- contest1D(m, L, ddf = "Kenward-Roger", confint = TRUE)
      out$kr$contrast <- list(estimate = kc$Estimate, se = kc$`Std. Error`, df = kc$df, p = kc$`Pr(>|t|)`)
    }
    if (length(args) >= 7) out$kr$ftest <- ftab(contestMD(m, Lf, ddf = "Kenward-Roger"))
  }
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
}
args <- commandArgs(trailingOnly = TRUE)
if (length(args) == 1) {
  for (line in readLines(args[1])) if (nzchar(line)) run_job(strsplit(line, " ", fixed = TRUE)[[1]])
} else run_job(args)
