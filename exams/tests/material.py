"""Prose the exam tests load as documents: a few paragraphs in English and in Spanish."""

ENGLISH = """# The Water Cycle

The water cycle describes how water moves between the oceans, the atmosphere and the land. Energy from
the Sun heats the surface of the oceans, and part of that water turns into vapour through evaporation.
Plants also release vapour from their leaves in a process called transpiration. As warm air rises, it
cools, and the vapour condenses into tiny droplets that form clouds.

When the droplets in a cloud grow heavy, they fall back to the ground as precipitation. Precipitation
can arrive as rain, snow, sleet or hail, depending on the temperature of the air. In cold regions,
snow accumulates over many winters and is compressed into glaciers. Glaciers store about 69 percent of
the fresh water on Earth, while groundwater stores most of the rest.

Water that reaches the ground either soaks into the soil or flows over it as runoff. Runoff collects in
streams and rivers, which carry sediment and nutrients towards lakes and the sea. The Amazon River
discharges more water into the Atlantic Ocean than any other river. Water that soaks into the soil
recharges aquifers, layers of porous rock that can hold water for thousands of years.

Scientists estimate that a single molecule of water spends about nine days in the atmosphere. In 1580
the French potter Bernard Palissy argued that rivers are fed by rain rather than by the sea. His idea
was confirmed in 1674 by Pierre Perrault, who measured the rainfall in the basin of the Seine. Today
satellites measure humidity, cloud cover and sea temperature across the whole planet every day.

Human activity changes the water cycle in several ways. Cities cover the soil with concrete, which
increases runoff and the risk of floods. Irrigation moves enormous volumes of water from rivers to
farmland, and reservoirs behind dams increase evaporation in dry climates. A warmer atmosphere holds
more moisture, so heavy storms become more frequent as the climate warms.
"""

SPANISH = """# La fotosíntesis

La fotosíntesis es el proceso mediante el cual las plantas transforman la energía de la luz en energía
química. Ocurre principalmente en las hojas, dentro de unos orgánulos llamados cloroplastos. Los
cloroplastos contienen clorofila, un pigmento verde que absorbe la luz roja y la luz azul. Gracias a
este proceso, la planta fabrica glucosa a partir del dióxido de carbono y del agua.

¿Qué necesita una planta para realizar la fotosíntesis? Necesita luz, agua, dióxido de carbono y
minerales del suelo. El agua sube desde las raíces por el xilema, un tejido formado por tubos muy
finos. El dióxido de carbono entra en la hoja a través de los estomas, pequeñas aberturas que se
abren durante el día. Como resultado, la planta libera oxígeno a la atmósfera.

La fase luminosa tiene lugar en los tilacoides, donde la clorofila capta la energía de los fotones.
En esta fase se rompe la molécula de agua y se produce el oxígeno que respiramos. La fase oscura,
también llamada ciclo de Calvin, fija el carbono y produce azúcares en el estroma del cloroplasto.
El químico Melvin Calvin describió este ciclo en 1950 y recibió el Premio Nobel en 1961.

Las algas y las cianobacterias también realizan la fotosíntesis en los océanos y los lagos. Se
calcula que el fitoplancton marino produce cerca de la mitad del oxígeno de la Tierra. En los
pantanos de la sierra, el musgo cubre las piedras húmedas y aprovecha la poca luz del otoño. La
niña observó con su lupa cómo la araña tejía su telaraña junto a un helecho.

La cantidad de fotosíntesis depende de la temperatura, de la intensidad de la luz y del agua
disponible. Cuando hace mucho calor, la planta cierra los estomas para no perder agua y la
fotosíntesis disminuye. En invierno, muchos árboles pierden sus hojas y dejan de producir glucosa
hasta la primavera. Los agricultores aprovechan este conocimiento en los invernaderos, donde
controlan la luz, el riego y la temperatura.
"""
