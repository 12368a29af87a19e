"""Properties from composition: formation-energy predictors and a stability oracle.

- :mod:`matvae.properties.features`: Magpie element-property statistics (matminer's element data).
- :mod:`matvae.properties.predictors`: the mean floor, the Magpie gradient-boosting baseline, heads on a
  VAE's latent code.
- :mod:`matvae.properties.network`: the attention network over (element, fraction) pairs shipped as the
  default formation-energy predictor.
- :mod:`matvae.properties.oracle`: predicted energies placed against the snapshot's convex hull
  (:func:`predict_properties`).
"""
