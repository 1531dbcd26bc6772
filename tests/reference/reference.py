"""Independent reference for the engine's statistics: pandas, NumPy and statsmodels on the
same Parquet files. Called by server/src/engine/reference_tests.rs with the datastore version
folder; prints one JSON object. Mirrors, step by step, the script in that test."""

import json
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import statsmodels.api as sm
from scipy import special, stats

root = sys.argv[1]


def days(date):
    return int((np.datetime64(date) - np.datetime64("1970-01-01")).astype(int))


def read(variable, date=None):
    table = pq.read_table(f"{root}/data/{variable}").to_pandas()
    if date is not None:
        d = days(date)
        stop = table.stop_epoch_days
        table = table[(table.start_epoch_days <= d) & (stop.isna() | (stop >= d))]
    return table.set_index("unit_id")["value"]


# import sex (sets the population), birth, wage, municipality; left joins on unit id.
df = pd.DataFrame({"sex": read("BEFOLKNING_KJOENN")})
df = df.join(read("BEFOLKNING_FOEDSELS_AAR_MND").rename("birth"))
df = df.join(read("INNTEKT_WLONN", "2021-12-31").rename("wage"))
df = df.join(read("BOSATTEFDT_BOSTED", "2021-01-01").rename("kommune"))
df["age"] = 2021 - np.trunc(df.birth / 100)
df = df[(df.age >= 25) & (df.age <= 66)]
df["decade"] = np.trunc(df.age / 10)

out = {"units": int(len(df)), "sex_counts": {k: int(v) for k, v in df.sex.value_counts().items()}}

percents = [1, 5, 25, 50, 75, 95, 99]
summaries = {}
for name in ["wage", "age"]:
    values = df[name].dropna().astype(float)
    lo, hi = np.percentile(values, [1, 99])
    coded = values.clip(lo, hi)
    summaries[name] = {
        "n": int(len(values)),
        "mean_coded": float(coded.mean()),
        "sd_coded": float(coded.std(ddof=1)),
        "sum_coded": float(coded.sum()),
        # Gini by its definition as mean absolute difference over twice the mean (O(n²)
        # pairwise, an independent route from the engine's sorted-rank formula).
        "gini_coded": float(np.abs(coded.values[:, None] - coded.values[None, :]).mean() / (2 * coded.mean())),
        "percentiles": [float(np.percentile(values, p)) for p in percents],
    }
out["summaries"] = summaries

# mean wage by sex, coded at the dataset's P1/P99 (the tabulate summarize() cells)
wages = df.wage.dropna().astype(float)
lo, hi = np.percentile(wages, [1, 99])
coded = df.assign(w=df.wage.clip(lo, hi)).dropna(subset=["w"])
out["mean_wage_by_sex"] = {k: float(v) for k, v in coded.groupby("sex").w.mean().items()}
# tabulate sex, summarize(wage) gini / iqr: the Gini of the coded values (by its definition,
# the mean absolute difference over twice the mean) and P75 − P25 of the values.
out["gini_wage_by_sex"] = {
    k: float(np.abs(g.values[:, None] - g.values[None, :]).mean() / (2 * g.mean()))
    for k, g in coded.groupby("sex").w
}
out["iqr_wage_by_sex"] = {
    k: float(np.percentile(g, 75) - np.percentile(g, 25)) for k, g in coded.groupby("sex").wage
}

# regress wage age i.sex [, robust | cluster(kommune)]
sample = df.dropna(subset=["wage", "age", "sex"])
X = pd.DataFrame({"age": sample.age.astype(float), "sex=2": (sample.sex == "2").astype(float)})
X["constant"] = 1.0
y = sample.wage.astype(float)
models = {}
classical = sm.OLS(y, X).fit()
models["classical"] = {
    "params": classical.params.tolist(),
    "bse": classical.bse.tolist(),
    "pvalues": classical.pvalues.tolist(),
    "rsquared": float(classical.rsquared),
    "fvalue": float(classical.fvalue),
    "n": int(classical.nobs),
}
# regress-predict: statsmodels' predictions on every row with age and sex, wage or not.
every = df.dropna(subset=["age", "sex"])
X_every = pd.DataFrame({"age": every.age.astype(float), "sex=2": (every.sex == "2").astype(float)})
X_every["constant"] = 1.0
fitted = classical.predict(X_every)
out["predict"] = {
    "ols": {
        "n": int(len(fitted)),
        "sum": float(fitted.sum()),
        "sum_sq": float((fitted ** 2).sum()),
        "n_resid": int(classical.nobs),
        "resid_sq": float(classical.ssr),
    }
}
# regress …, vif standardize: statsmodels' VIF (X with its constant) and b × sd(x) / sd(y).
from statsmodels.stats.outliers_influence import variance_inflation_factor

models["diagnostics"] = {
    "vif": [variance_inflation_factor(X.values, j) for j in range(2)],
    "beta": [float(classical.params.iloc[j] * X.iloc[:, j].std() / y.std()) for j in range(2)],
}
robust = sm.OLS(y, X).fit(cov_type="HC1")
models["robust"] = {"params": robust.params.tolist(), "bse": robust.bse.tolist()}
clustered_sample = sample.dropna(subset=["kommune"])
Xc = X.loc[clustered_sample.index]
groups = pd.factorize(clustered_sample.kommune)[0]
cluster = sm.OLS(y.loc[clustered_sample.index], Xc).fit(cov_type="cluster", cov_kwds={"groups": groups})
models["cluster"] = {"params": cluster.params.tolist(), "bse": cluster.bse.tolist()}
out["models"] = models

# logit / probit (wage > 500000) age i.sex: maximum likelihood, observed-information errors.
high = (y > 500000).astype(float)
# poisson: wage in units of 100 000, rounded down, as a count.
count = np.floor(y / 100000)
for name, model, outcome in [
    ("logit", sm.Logit, high),
    ("probit", sm.Probit, high),
    ("poisson", sm.Poisson, count),
    # NB2 (variance μ + αμ²); statsmodels puts alpha last among params.
    ("negative-binomial", sm.NegativeBinomial, count),
]:
    fit = model(outcome, X).fit(disp=0, tol=1e-12, maxiter=500, method="newton")
    if name == "logit":
        # logit-predict: probabilities on every row with age and sex; residuals on the sample.
        probability = fit.predict(X_every)
        out["predict"]["logit"] = {
            "n": int(len(probability)),
            "sum": float(probability.sum()),
            "sum_sq": float((probability ** 2).sum()),
            "n_resid": int(len(outcome)),
            "resid_sq": float(((outcome - fit.predict(X)) ** 2).sum()),
        }
    if name in ("logit", "probit"):
        # Average marginal effects; 0/1 columns as discrete changes. The constant has none.
        margins = fit.get_margeff(at="overall", method="dydx", dummy=True)
        out[f"{name}_mfx"] = {"effects": margins.margeff.tolist(), "se": margins.margeff_se.tolist()}
        # Elasticities. eyex and dyex need a continuous x: statsmodels refuses them for 0/1
        # columns, so they are taken with dummy=False and compared for age (first) only.
        for method, dummy in [("eydx", True), ("eyex", False), ("dyex", False)]:
            margins = fit.get_margeff(at="overall", method=method, dummy=dummy)
            out[f"{name}_{method}"] = {
                "effects": margins.margeff.tolist(),
                "se": margins.margeff_se.tolist(),
            }
    # robust: the HC0 sandwich, times n/(n−1) as Stata's `robust` for these models.
    sandwich = model(outcome, X).fit(disp=0, tol=1e-12, maxiter=500, method="newton", cov_type="HC0")
    n_obs = len(outcome)
    # cluster(kommune): statsmodels' own scores and Hessian on the rows with a kommune, summed
    # by cluster, with Stata's G/(G−1) for these models.
    rows_c = clustered_sample.index
    fit_c = model(outcome.loc[rows_c], X.loc[rows_c]).fit(disp=0, tol=1e-12, maxiter=500, method="newton")
    scores = fit_c.model.score_obs(fit_c.params.values)
    bread = np.linalg.inv(-fit_c.model.hessian(fit_c.params.values))
    codes = pd.factorize(clustered_sample.kommune)[0]
    summed = np.array([scores[codes == g].sum(axis=0) for g in range(codes.max() + 1)])
    n_groups = len(summed)
    clustered = bread @ (summed.T @ summed) @ bread * n_groups / (n_groups - 1)
    out[name] = {
        "cluster_bse": np.sqrt(np.diag(clustered)).tolist(),
        "robust_bse": (sandwich.bse * np.sqrt(n_obs / (n_obs - 1))).tolist(),
        "params": fit.params.tolist(),
        "bse": fit.bse.tolist(),
        "llf": float(fit.llf),
        "llnull": float(fit.llnull),
        "prsquared": float(fit.prsquared),
    }

# logit high c.age##i.sex, mfx(dydx | eydx): effects per variable, the interaction changing with
# them, as Stata's margins. statsmodels' get_margeff takes columns one by one, so the effects
# are computed here from statsmodels' fit, with errors by the delta method on a complex-step
# Jacobian (statsmodels' approx_fprime_cs).
from statsmodels.tools.numdiff import approx_fprime_cs

Xi = pd.DataFrame(
    {"age": X["age"], "sex=2": X["sex=2"], "age#sex=2": X["age"] * X["sex=2"], "constant": 1.0}
)
fit = sm.Logit(high, Xi).fit(disp=0, tol=1e-12, maxiter=500, method="newton")
age_i, sex_i = Xi["age"].values, Xi["sex=2"].values


def interaction_effects(b, log):
    logistic = lambda eta: 1 / (1 + np.exp(-eta))
    eta = b[0] * age_i + b[1] * sex_i + b[2] * age_i * sex_i + b[3]
    p = logistic(eta)
    d_eta = b[0] + b[2] * sex_i
    age_effect = ((1 - p) * d_eta).mean() if log else (p * (1 - p) * d_eta).mean()
    p1 = logistic(b[0] * age_i + b[1] + b[2] * age_i + b[3])
    p0 = logistic(b[0] * age_i + b[3])
    sex_effect = (np.log(p1) - np.log(p0)).mean() if log else (p1 - p0).mean()
    return np.array([age_effect, sex_effect])


for name, log in [("dydx", False), ("eydx", True)]:
    params = fit.params.values
    jac = approx_fprime_cs(params, lambda b: interaction_effects(b, log))
    out[f"logit_interaction_{name}"] = {
        "effects": interaction_effects(params, log).real.tolist(),
        "se": np.sqrt(np.diag(jac @ fit.cov_params().values @ jac.T)).tolist(),
    }

# poisson hundreds age i.sex, exposure(age): ln(age) as an offset.
fit = sm.Poisson(count, X, exposure=sample.age.astype(float)).fit(disp=0, tol=1e-12, maxiter=200)
out["poisson_exposure"] = {
    "params": fit.params.tolist(),
    "bse": fit.bse.tolist(),
    "llf": float(fit.llf),
    "llnull": float(fit.llnull),
}

# cox age high i.sex wage100 (age as a duration, high as the event: numbers to fit, not a
# study), Breslow ties; statsmodels reports log hazards, the engine hazard ratios.
from statsmodels.duration.hazard_regression import PHReg

Xcox = pd.DataFrame({"sex=2": X["sex=2"], "hundreds": count})
cox = PHReg(sample.age.astype(float), Xcox, status=high, ties="breslow").fit()
out["cox"] = {
    "params": cox.params.tolist(),
    "bse": cox.bse.tolist(),
    "llf": float(cox.llf),
}

# weibull age high i.sex hundreds: the Weibull proportional-hazards likelihood maximised by
# statsmodels' GenericLikelihoodModel (its own optimiser and numerical Hessian), parameters
# (sex=2, hundreds, constant, ln p) in the engine's order.
from statsmodels.base.model import GenericLikelihoodModel


class WeibullPH(GenericLikelihoodModel):
    def loglike(self, params):
        beta, log_p = params[:-1], params[-1]
        p = np.exp(log_p)
        t, d = self.endog, self.died
        eta = self.exog @ beta
        return np.sum(d * (log_p + (p - 1) * np.log(t) + eta) - np.exp(eta) * t**p)


Xw = pd.DataFrame({"sex=2": X["sex=2"], "hundreds": count, "constant": 1.0})
weibull = WeibullPH(sample.age.astype(float).values, Xw.values)
weibull.died = high.values
start = np.array([0.0, 0.0, np.log(high.sum() / sample.age.sum()), 0.0])
fit = weibull.fit(start_params=start, method="bfgs", gtol=1e-11, maxiter=5000, disp=0)
fit = weibull.fit(start_params=fit.params, method="newton", tol=1e-14, maxiter=100, disp=0)
# Errors from a complex-step Hessian, exact to rounding (the default finite differences are
# good to about 1e-5 only).
from statsmodels.tools.numdiff import approx_hess_cs

hessian = approx_hess_cs(fit.params, weibull.loglike)
out["weibull"] = {
    "params": fit.params.tolist(),
    "bse": np.sqrt(np.diag(np.linalg.inv(-hessian))).tolist(),
    "llf": float(fit.llf),
}

# oaxaca wage age, by(sex): statsmodels' threefold decomposition, group 1 the lower code
# (swap off). Its errors are bootstrapped, so Jann's delta-method errors are computed here
# from statsmodels' own group fits and the regressors' covariance.
from statsmodels.stats.oaxaca import OaxacaBlinder

Xo = X[["age", "sex=2", "constant"]]
ob = OaxacaBlinder(y.values, Xo.values, bifurcate=1, hasconst=True, swap=False)
three = ob.three_fold().params
fits_o, means_o, vmeans_o = [], [], []
for level in (0.0, 1.0):
    rows = Xo["sex=2"] == level
    xg = Xo.loc[rows, ["age", "constant"]].values
    g = sm.OLS(y[rows].values, xg).fit()
    fits_o.append(g)
    means_o.append(xg.mean(axis=0))
    vmeans_o.append(np.cov(xg, rowvar=False) / len(xg))
b1, b2 = fits_o[0].params, fits_o[1].params
v1, v2 = fits_o[0].cov_params(), fits_o[1].cov_params()
m1, m2 = means_o
q = lambda a, v: float(a @ v @ a)
out["oaxaca"] = {
    "endowments": float(three[0]),
    "coefficients": float(three[1]),
    "interaction": float(three[2]),
    "gap": float(three[3]),
    "se": [
        np.sqrt(q(m1, v1) + q(b1, vmeans_o[0])),
        np.sqrt(q(m2, v2) + q(b2, vmeans_o[1])),
        np.sqrt(q(m1, v1) + q(b1, vmeans_o[0]) + q(m2, v2) + q(b2, vmeans_o[1])),
        np.sqrt(q(m1 - m2, v2) + q(b2, vmeans_o[0] + vmeans_o[1])),
        np.sqrt(q(m2, v1 + v2) + q(b1 - b2, vmeans_o[1])),
        np.sqrt(q(m1 - m2, v1 + v2) + q(b1 - b2, vmeans_o[0] + vmeans_o[1])),
    ],
}

# regress-mml wage i.sex by age: statsmodels' MixedLM (REML), its Nelder–Mead run to tight
# tolerances; a random intercept per year of age, which wage depends on. The engine's errors
# are σ²(X′V⁻¹X)⁻¹ (Stata, lme4); statsmodels inverts the whole observed Hessian instead, so
# its errors are compared loosely and the exact formula is evaluated here at statsmodels' own
# variance estimates.
Xm = X[["sex=2", "constant"]]
groups_m = pd.factorize(sample.age)[0]
mixed = sm.MixedLM(y.values, Xm.values, groups=groups_m).fit(method="nm", maxiter=20000, ftol=1e-14)
gamma_m = float(np.asarray(mixed.cov_re)[0, 0]) / mixed.scale
A = np.zeros((2, 2))
for g in range(groups_m.max() + 1):
    xg = Xm.values[groups_m == g]
    s_g = xg.sum(axis=0)
    A += xg.T @ xg - gamma_m / (1 + len(xg) * gamma_m) * np.outer(s_g, s_g)
out["mixed"] = {
    "params": np.asarray(mixed.fe_params).tolist(),
    "bse_statsmodels": np.asarray(mixed.bse_fe).tolist(),
    "bse": np.sqrt(np.diag(mixed.scale * np.linalg.inv(A))).tolist(),
    "scale": float(mixed.scale),
    "group_variance": float(np.asarray(mixed.cov_re)[0, 0]),
    "llf": float(mixed.llf),
}

# rdd wage age, threshold(40) [bandwidth(8) | fuzzy(treated)]: rdrobust's defaults (MSE-optimal
# bandwidth, which adjusts for age's mass points; nearest-neighbour errors), then a given
# bandwidth, then a fuzzy design whose treatment is likelier from 40 on.
import contextlib

from rdrobust import rdrobust

month = sample.birth - 100 * np.trunc(sample.birth / 100)
treated = (((sample.age >= 40) & (month <= 9)) | ((sample.age < 40) & (month <= 3))).astype(float)
out["rdd"] = {}
for key, h, fuzzy in [("mserd", None, None), ("given", 8.0, None), ("fuzzy", None, treated.values)]:
    with contextlib.redirect_stdout(sys.stderr):  # it prints a note on mass points
        fit = rdrobust(y.values, sample.age.astype(float).values, c=40.0, h=h, fuzzy=fuzzy)
    out["rdd"][key] = {
        "coef": np.asarray(fit.coef).reshape(-1).tolist(),
        "se": np.asarray(fit.se).reshape(-1).tolist(),
        "h": float(np.asarray(fit.bws)[0, 0]),
        "b": float(np.asarray(fit.bws)[1, 0]),
    }

# mlogit band age i.sex, band = 1 + (wage > 300000) + (wage > 600000): the lowest level is
# the base. params is (terms × outcomes); flattened outcome by outcome, as the engine lists them.
band = 1 + (y > 300000).astype(int) + (y > 600000).astype(int)
fit = sm.MNLogit(band, X).fit(disp=0, method="newton", tol=1e-12, maxiter=200)
# robust and cluster(kommune): sandwiches of statsmodels' own scores and Hessian (its flat
# parameter order is outcome by outcome, the engine's), with Stata's n/(n−1) and G/(G−1).
def mnlogit_sandwich(model, params, groups=None):
    scores = model.score_obs(params)
    bread = np.linalg.inv(-model.hessian(params))
    if groups is None:
        n = len(scores)
        return bread @ (scores.T @ scores) @ bread * n / (n - 1)
    summed = np.array([scores[groups == g].sum(axis=0) for g in range(groups.max() + 1)])
    g = len(summed)
    return bread @ (summed.T @ summed) @ bread * g / (g - 1)


flat = fit.params.values.T.flatten()
robust_mn = mnlogit_sandwich(fit.model, flat)
fit_c = sm.MNLogit(band.loc[rows_c], X.loc[rows_c]).fit(disp=0, method="newton", tol=1e-12, maxiter=200)
cluster_mn = mnlogit_sandwich(
    fit_c.model, fit_c.params.values.T.flatten(), pd.factorize(clustered_sample.kommune)[0]
)
out["mlogit"] = {
    "params": flat.tolist(),
    "bse": fit.bse.values.T.flatten().tolist(),
    "robust_bse": np.sqrt(np.diag(robust_mn)).tolist(),
    "cluster_bse": np.sqrt(np.diag(cluster_mn)).tolist(),
    "llf": float(fit.llf),
    "llnull": float(fit.llnull),
    "prsquared": float(fit.prsquared),
}

# ivregress earned i.sex (wage = age month): two-stage least squares. statsmodels' IV2SLS
# divides the RSS by N − k; Stata's default (and ours) by N, so its errors are rescaled.
from statsmodels.sandbox.regression.gmm import IV2SLS

iv = df.join(read("INNTEKT_WYRKINNT", "2021-12-31").rename("earned"))
iv["month"] = iv.birth - 100 * np.trunc(iv.birth / 100)
iv = iv.dropna(subset=["earned", "wage", "age", "sex", "month"])
female = (iv.sex == "2").astype(float)
Xiv = pd.DataFrame({"wage": iv.wage.astype(float), "sex=2": female})
Xiv["constant"] = 1.0
Ziv = pd.DataFrame({"sex=2": female, "age": iv.age.astype(float), "month": iv.month.astype(float)})
Ziv["constant"] = 1.0
yiv = iv.earned.astype(float)
fit = IV2SLS(yiv, Xiv, instrument=Ziv).fit()
n_iv, k_iv = len(yiv), Xiv.shape[1]
cov = np.asarray(fit.cov_params()) * (n_iv - k_iv) / n_iv
resid = yiv - Xiv.values @ fit.params.values
b = fit.params.values[:2]
out["ivregress"] = {
    "params": fit.params.tolist(),
    "bse": np.sqrt(np.diag(cov)).tolist(),
    "n": n_iv,
    "rsquared": float(1 - (resid ** 2).sum() / ((yiv - yiv.mean()) ** 2).sum()),
    "wald": float(b @ np.linalg.solve(cov[:2, :2], b)),
}

# ivregress …, liml and …, gmm: linearmodels' IVLIML (unadjusted errors over N, as Stata's
# default) and IVGMM (two-step, robust weight and errors), reported in the engine's order.
from linearmodels.iv import IVGMM, IVLIML

exog = pd.DataFrame({"sex=2": female, "constant": 1.0})
endog = pd.DataFrame({"wage": iv.wage.astype(float)})
instruments = pd.DataFrame({"age": iv.age.astype(float), "month": iv.month.astype(float)})
order = ["wage", "sex=2", "constant"]
liml = IVLIML(yiv, exog, endog, instruments).fit(cov_type="unadjusted", debiased=False)
gmm = IVGMM(yiv, exog, endog, instruments).fit()
out["ivregress_liml"] = {
    "params": liml.params[order].tolist(),
    "bse": liml.std_errors[order].tolist(),
    "kappa": float(liml.kappa),
}
out["ivregress_gmm"] = {"params": gmm.params[order].tolist(), "bse": gmm.std_errors[order].tolist()}

# collapse (stat) earned, by(famnr) over every person, earned coded at its P1/P99.
fam = pd.DataFrame({"sex": read("BEFOLKNING_KJOENN")})
fam = fam.join(read("BEFOLKNING_REGSTAT_FAMNR", "2021-01-01").rename("famnr"))
fam = fam.join(read("INNTEKT_WYRKINNT", "2021-12-31").rename("earned"))
earned = fam.earned.dropna().astype(float)
lo, hi = np.percentile(earned, [1, 99])
fam["coded"] = fam.earned.astype(float).clip(lo, hi)
grouped = fam.dropna(subset=["famnr"]).groupby("famnr").coded
collapsed = pd.DataFrame({
    "sum": grouped.sum(),
    "mean": grouped.mean(),
    "count": grouped.count(),
    "median": grouped.median(),
    "sd": grouped.std(ddof=1),
    "p25": grouped.quantile(0.25),
    "p75": grouped.quantile(0.75),
    "min": grouped.min(),
    "max": grouped.max(),
    "semean": grouped.sem(ddof=1),
})
out["collapse"] = {
    str(int(g)): {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
    for g, row in collapsed.iterrows()
}

# correlate wage age, normaltest wage age, anova wage kommune, ci wage: coded at P1/P99.
def coded_column(series):
    values = series.dropna().astype(float)
    lo, hi = np.percentile(values, [1, 99])
    return series.astype(float).clip(lo, hi)

both = pd.DataFrame({"wage": coded_column(df.wage), "age": coded_column(df.age)}).dropna()
out["correlate"] = {
    "r": float(both.wage.corr(both.age)),
    "p": float(stats.pearsonr(both.wage, both.age)[1]),
    "cov": float(both.wage.cov(both.age)),
    "n": int(len(both)),
}
# correlate wage age kommune_number, pairwise: each pair over its complete observations.
three = pd.DataFrame(
    {
        "wage": coded_column(df.wage),
        "age": coded_column(df.age),
        "kommune_number": coded_column(pd.to_numeric(df.kommune, errors="coerce")),
    }
)
present = three.notna().astype(int)
out["pairwise"] = {
    "r": three.corr().values.tolist(),
    "n": (present.T @ present).values.tolist(),
}
out["normaltest"] = {}
for name in ["wage", "age"]:
    column = both[name]
    k2, p = stats.normaltest(column)
    out["normaltest"][name] = {
        "skew": float(stats.skew(column)),
        "kurtosis": float(stats.kurtosis(column, fisher=False)),
        "z_skew": float(stats.skewtest(column)[0]),
        "z_kurt": float(stats.kurtosistest(column)[0]),
        "k2": float(k2),
        "p": float(p),
    }
import statsmodels.formula.api as smf
aov_data = pd.DataFrame({"wage": coded_column(df.wage), "kommune": df.kommune}).dropna()
table = sm.stats.anova_lm(smf.ols("wage ~ C(kommune)", data=aov_data).fit(), typ=1)
out["anova"] = {
    "ss_between": float(table.sum_sq.iloc[0]),
    "ss_within": float(table.sum_sq.iloc[1]),
    "df_between": float(table.df.iloc[0]),
    "df_within": float(table.df.iloc[1]),
    "F": float(table.F.iloc[0]),
    "p": float(table["PR(>F)"].iloc[0]),
}
aov2_data = pd.DataFrame(
    {"wage": coded_column(df.wage), "kommune": df.kommune, "sex": df.sex}
).dropna()
table = sm.stats.anova_lm(smf.ols("wage ~ C(kommune) + C(sex)", data=aov2_data).fit(), typ=2)
out["anova2"] = {
    source: {
        "ss": float(table.sum_sq.iloc[i]),
        "df": float(table.df.iloc[i]),
        "F": None if pd.isna(table.F.iloc[i]) else float(table.F.iloc[i]),
        "p": None if pd.isna(table["PR(>F)"].iloc[i]) else float(table["PR(>F)"].iloc[i]),
    }
    for i, source in enumerate(["kommune", "sex", "residual"])
}
# anova wage kommune, noconstant: the cell-means model, sums of squares about zero.
# statsmodels sees the constant the level dummies add up to and centres its own ess and F,
# so the uncentred sums (as Stata's anova, noconstant) are taken from its fit directly.
fit = smf.ols("wage ~ C(kommune) - 1", data=aov_data).fit()
ss_model = float((fit.fittedvalues ** 2).sum())
df_model = float(fit.model.rank)
F = (ss_model / df_model) / (fit.ssr / fit.df_resid)
out["anova_noconstant"] = {
    "ss_model": ss_model,
    "ss_residual": float(fit.ssr),
    "df_model": df_model,
    "df_residual": float(fit.df_resid),
    "F": float(F),
    "p": float(stats.f.sf(F, df_model, fit.df_resid)),
}
# anova wage decade, posthoc: every pair of the age decades' means, pooled MSE, Bonferroni.
from statsmodels.stats.multitest import multipletests
decades = pd.DataFrame({"wage": coded_column(df.wage), "decade": df.decade}).dropna()
one_way = smf.ols("wage ~ C(decade)", data=decades).fit()
groups = decades.groupby("decade").wage
means, sizes = groups.mean(), groups.size()
order = sorted(means.index, key=lambda k: float(k))
pairs, raw_p = [], []
for a in range(len(order)):
    for b in range(a + 1, len(order)):
        i, j = order[a], order[b]
        difference = means[i] - means[j]
        se = np.sqrt(one_way.mse_resid * (1 / sizes[i] + 1 / sizes[j]))
        pairs.append([float(difference), float(se), float(difference / se)])
        raw_p.append(2 * stats.t.sf(abs(difference / se), one_way.df_resid))
adjusted = multipletests(raw_p, method="bonferroni")[1]
out["posthoc"] = [row + [float(p)] for row, p in zip(pairs, adjusted)]
# regress wage c.age##i.sex and regress wage i.sex##i.band (band = 1 + (age > 35) +
# (age > 50)): patsy's treatment-coded products, reported in the engine's order (terms as
# written, then the constant).
inter = df.dropna(subset=["wage", "age", "sex"]).copy()
inter["wage"] = inter.wage.astype(float)
inter["age"] = inter.age.astype(float)
inter["band"] = (1 + (inter.age > 35).astype(int) + (inter.age > 50).astype(int)).astype(str)
f1 = smf.ols("wage ~ age * C(sex)", data=inter).fit()
f2 = smf.ols("wage ~ C(sex) * C(band)", data=inter).fit()
order1 = ["age", "C(sex)[T.2]", "age:C(sex)[T.2]", "Intercept"]
order2 = [
    "C(sex)[T.2]", "C(band)[T.2]", "C(band)[T.3]",
    "C(sex)[T.2]:C(band)[T.2]", "C(sex)[T.2]:C(band)[T.3]", "Intercept",
]
out["interactions"] = {
    "age_sex": {"params": f1.params[order1].tolist(), "bse": f1.bse[order1].tolist()},
    "sex_band": {"params": f2.params[order2].tolist(), "bse": f2.bse[order2].tolist()},
}

# quantile(wage, 10): the number of decile cut points strictly below each value.
wages_present = df.wage.dropna().astype(float)
cuts = np.percentile(wages_present, [10 * k for k in range(1, 10)])
deciles = np.searchsorted(cuts, wages_present.values, side="left")
out["deciles"] = {str(k): int((deciles == k).sum()) for k in range(10)}

# Distribution and counting functions (scipy, which statsmodels brings).
out["functions"] = {
    "normal(1.5)": float(stats.norm.cdf(1.5)),
    "normalden(0.3)": float(stats.norm.pdf(0.3)),
    "normalden(12, 10, 4)": float(stats.norm.pdf(12, 10, 4)),
    "t(7, 1.2)": float(stats.t.cdf(1.2, 7)),
    "ttail(7, 2.5)": float(stats.t.sf(2.5, 7)),
    "invt(12, 0.975)": float(stats.t.ppf(0.975, 12)),
    "invttail(12, 0.025)": float(stats.t.isf(0.025, 12)),
    "F(3, 20, 2.1)": float(stats.f.cdf(2.1, 3, 20)),
    "Ftail(3, 20, 2.1)": float(stats.f.sf(2.1, 3, 20)),
    "invF(3, 20, 0.95)": float(stats.f.ppf(0.95, 3, 20)),
    "chi2(4, 3.3)": float(stats.chi2.cdf(3.3, 4)),
    "chi2tail(4, 9.5)": float(stats.chi2.sf(9.5, 4)),
    "invchi2(4, 0.9)": float(stats.chi2.ppf(0.9, 4)),
    "binomial(20, 7, 0.3)": float(stats.binom.cdf(7, 20, 0.3)),
    "binomialp(20, 7, 0.3)": float(stats.binom.pmf(7, 20, 0.3)),
    "binomialtail(20, 7, 0.3)": float(stats.binom.sf(6, 20, 0.3)),
    "lnfactorial(30)": float(special.gammaln(31)),
    "comb(30, 12)": float(special.comb(30, 12, exact=True)),
}

# kaplan-meier age high: the life table's counts in 10 equal intervals from 0 to the coded
# range's upper bound rounded outward (as a chart axis), and the actuarial survival.
km = df.dropna(subset=["age", "wage"])
ages = df.age.dropna().astype(float)
lo, hi = np.percentile(ages, [1, 99])
step = 10 ** (np.floor(np.log10(hi - lo)) - 1)
end = max(np.ceil(hi / step) * step, 1.0)
width = end / 10
duration = km.age.astype(float).clip(lo, hi)
interval = np.minimum((duration / width).astype(int), 9)
event = km.wage.astype(float) > 500000
rows, survival = [], 1.0
for j in range(10):
    at_risk = int((interval >= j).sum())
    events = int(((interval == j) & event).sum())
    censored = int(((interval == j) & ~event).sum())
    exposed = at_risk - censored / 2
    if exposed > 0:
        survival *= max(0.0, 1 - events / exposed)
    rows.append({"at_risk": at_risk, "events": events, "censored": censored, "survival": survival})
out["life_table"] = rows

# import-panel INNTEKT_WLONN SIVSTANDFDT_SIVSTAND BEFOLKNING_KJOENN on three dates: a row per
# person and date where the person has any of them (sex, a FIXED variable, is there always).
from linearmodels.panel import BetweenOLS, PanelOLS, PooledOLS, RandomEffects

panel_dates = ["2019-01-01", "2020-01-01", "2021-01-01"]
frames = []
for d in panel_dates:
    f = pd.concat(
        [
            read("INNTEKT_WLONN", d).rename("wage"),
            read("SIVSTANDFDT_SIVSTAND", d).rename("sivstand"),
            read("BEFOLKNING_KJOENN").rename("sex"),
        ],
        axis=1,
        join="outer",
    )
    f.index.name = "unit_id"
    f = f.reset_index()
    f["date"] = pd.Timestamp(d)
    frames.append(f)
panel = pd.concat(frames).set_index(["unit_id", "date"]).sort_index()
# generate married = SIVSTANDFDT_SIVSTAND == '2' (missing stays missing); female alike.
panel["married"] = np.where(panel.sivstand.isna(), np.nan, (panel.sivstand == "2").astype(float))
panel["female"] = np.where(panel.sex.isna(), np.nan, (panel.sex == "2").astype(float))
panel["wage"] = panel.wage.astype(float)
out["panel_rows"] = int(len(panel))


def panel_fit(fit):
    return {
        "params": fit.params.tolist(),
        "bse": fit.std_errors.tolist(),
        "nobs": int(fit.nobs),
        "r2_within": float(fit.rsquared_within),
        "r2_between": float(fit.rsquared_between),
        "r2_overall": float(fit.rsquared_overall),
    }


# The engine's column order: the terms, then the constant.
s1 = panel[["wage", "married"]].dropna()
x1 = s1[["married"]].assign(constant=1.0)
s2 = panel[["wage", "married", "female"]].dropna()
x2 = s2[["married", "female"]].assign(constant=1.0)
fe = PanelOLS(s1.wage, x1, entity_effects=True).fit()
re1 = RandomEffects(s1.wage, x1).fit()
re2 = RandomEffects(s2.wage, x2).fit()
models = {
    "fe": panel_fit(fe),
    "re": panel_fit(re2),
    "be": panel_fit(BetweenOLS(s2.wage, x2).fit()),
    "pooled": panel_fit(PooledOLS(s2.wage, x2).fit()),
}
vd = re2.variance_decomposition
models["re"]["sigma_u"] = float(np.sqrt(vd["Effects"]))
models["re"]["sigma_e"] = float(np.sqrt(vd["Residual"]))
models["re"]["rho"] = float(vd["Percent due to Effects"])
# hausman wage married: FE against RE on married, a generalised inverse as Stata.
d = fe.params["married"] - re1.params["married"]
v = fe.cov.loc["married", "married"] - re1.cov.loc["married", "married"]
chi2 = float(d * d / v)
models["hausman"] = {"chi2": chi2, "df": 1, "p": float(stats.chi2.sf(chi2, 1))}
out["panel"] = models

print(json.dumps(out))
