#!/usr/bin/env python
"""Generate MoP's small offline datasets (deterministic, no network).

Writes
  mop/assets/instructions.json        400 Alpaca-style records (calibration + LoRA recovery)
  mop/tasks/data/mop_arc.jsonl        ARC-style 4-way science / common-sense questions
  mop/tasks/data/mop_piqa.jsonl       PIQA-style 2-way physical common sense
  mop/tasks/data/mop_hellaswag.jsonl  HellaSwag-style 4-way sentence completion

All text is written for this project (hand-written items plus template-generated
items whose answers are computed, e.g. arithmetic or unit conversion).  Answer
positions are balanced and shuffled with a fixed seed, so rerunning the script
reproduces the files byte for byte.

Usage:  python tools/make_datasets.py [--check]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240601
TASK_DIR = ROOT / "mop" / "tasks" / "data"
INSTR_PATH = ROOT / "mop" / "assets" / "instructions.json"


def _rows(block: str, n_fields: int) -> list[list[str]]:
    rows = []
    for line in block.strip().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != n_fields:
            raise ValueError(f"expected {n_fields} fields: {line!r}")
        rows.append(parts)
    return rows


# ---------------------------------------------------------------------------
# ARC-style: question | correct answer | three distractors
# ---------------------------------------------------------------------------
ARC = """
Which part of a plant takes in water from the soil?|the roots|the petals|the seeds|the pollen
Which gas do plants take in from the air to make their food?|carbon dioxide|helium|neon|chlorine
Which gas do people need to breathe in to stay alive?|oxygen|helium|neon|argon
What is the main source of light for Earth during the day?|the Sun|the Moon|the ocean|the clouds
At what temperature in degrees Celsius does water freeze?|0 degrees|50 degrees|100 degrees|30 degrees
At what temperature in degrees Celsius does water boil at sea level?|100 degrees|0 degrees|10 degrees|45 degrees
What is the solid form of water called?|ice|steam|fog|juice
What is water vapor?|water in the form of a gas|water in the form of a solid|a kind of rock|a kind of salt
Which of these animals is a mammal?|a dog|a shark|a frog|a snake
Which of these animals lays eggs?|a chicken|a cow|a horse|a dog
What do caterpillars turn into?|butterflies|spiders|frogs|worms
What do bees make from the nectar of flowers?|honey|milk|silk|wool
Which organ pumps blood through the body?|the heart|the lungs|the stomach|the skin
Which organs do people use to breathe?|the lungs|the kidneys|the ears|the bones
Which sense organs do people use to see?|the eyes|the ears|the nose|the tongue
Which sense organs do people use to hear sounds?|the ears|the eyes|the knees|the hands
What is the hard bone that protects the brain?|the skull|the rib|the spine|the knee
What force pulls objects toward the ground?|gravity|light|sound|heat
What usually happens to a metal rod when it is heated?|it expands|it shrinks|it freezes|it vanishes
Which material is attracted to a magnet?|iron|wood|glass|plastic
What kind of energy is stored in a battery?|chemical energy|sound energy|wind energy|light energy
Which planet do we live on?|Earth|Mars|Venus|Jupiter
Which planet is closest to the Sun?|Mercury|Neptune|Saturn|Uranus
What is the largest planet in our solar system?|Jupiter|Mercury|Mars|Venus
What causes day and night on Earth?|Earth spinning on its axis|the Moon blocking the Sun|clouds covering the sky|the Sun turning off at night
How long does it take Earth to travel once around the Sun?|about one year|about one day|about one week|about one hour
What is the Moon?|a natural satellite that orbits Earth|a star that makes its own light|a planet much bigger than Earth|a cloud of gas in the sky
Which tool is used to measure temperature?|a thermometer|a ruler|a stopwatch|a compass
Which tool is best for measuring the length of a table?|a tape measure|a thermometer|a stopwatch|a balance
Which tool measures how much time has passed?|a stopwatch|a ruler|a thermometer|a magnet
Melting ice into water is an example of what?|a change of state|a kind of weather|a type of sound|a form of magnetism
Which of these is a renewable energy source?|wind|coal|oil|natural gas
What do we call animals that eat only plants?|herbivores|carnivores|predators|scavengers
What do we call an animal that hunts other animals for food?|a predator|a plant|a fungus|a mineral
What do fish use to breathe underwater?|gills|lungs|feathers|fur
What covers the body of a bird?|feathers|scales|fur|shells
Where does a polar bear live?|in the cold Arctic|in a hot desert|in a tropical jungle|in a city park
Which animal is best suited to living in a hot, dry desert?|a camel|a penguin|a polar bear|a whale
Why do many birds fly south in the autumn?|to find warmer weather and food|to look for snow to play in|to get away from the sunlight|to find colder places to live
What do most seeds need to start growing?|water and warmth|salt and darkness|ice and wind|oil and sand
What is the process by which plants make food from sunlight?|photosynthesis|evaporation|digestion|erosion
What is the center of an atom called?|the nucleus|the shell|the orbit|the surface
What is the chemical formula for water?|H2O|CO2|NaCl|O2
Which of these is a liquid at room temperature?|water|iron|wood|stone
Which of these is a gas at room temperature?|oxygen|sand|gold|glass
Which of these is a solid at room temperature?|a rock|milk|steam|juice
What do we call water that falls from clouds as drops?|rain|sand|smoke|dust
What do we call a cloud that forms close to the ground?|fog|lava|sand|smoke
Which tool is used to look at very small living things?|a microscope|a telescope|a periscope|a megaphone
Which instrument do astronomers use to see distant stars?|a telescope|a microscope|a thermometer|a barometer
What do the roots of a plant do?|hold it in the soil and take in water|make the flowers of the plant colorful|help the plant make loud sounds|catch flying insects for the plant
Which of these is a source of light?|a candle flame|a mirror|a rock|a book
What causes sound?|vibrations|colors|shadows|smells
On which surface would a rolling ball travel the farthest?|smooth ice|thick grass|deep sand|soft mud
Which object would float in water?|a piece of wood|a steel nail|a stone|a gold coin
What do we call the path a planet takes around the Sun?|an orbit|an axis|a crater|a comet
Which star is closest to Earth?|the Sun|the North Star|Sirius|Vega
Why does the Moon appear to shine at night?|it reflects light from the Sun|it burns like a big fire|it is full of glowing gas|it is covered in light bulbs
What is the largest ocean on Earth?|the Pacific Ocean|the Indian Ocean|the Arctic Ocean|the Southern Ocean
On which layer of Earth do we live?|the crust|the inner core|the outer core|the mantle
What is a volcano?|an opening in the ground where melted rock comes out|a deep lake formed by melting snow|a tall mountain made only of ice|a large storm that forms over the sea
What kind of storm has a spinning, funnel-shaped cloud?|a tornado|a drizzle|a frost|a fog
What do we call small balls of ice that fall from storm clouds?|hail|fog|dew|mist
What do we call the amount of matter in an object?|mass|color|speed|sound
Which unit is used to measure temperature?|degrees|meters|liters|grams
Which unit is used to measure the mass of an apple?|grams|meters|liters|seconds
Which unit is used to measure the length of a pencil?|centimeters|liters|grams|degrees
Which unit is used to measure how much liquid is in a bottle?|liters|meters|degrees|hours
What does a green plant need to make its food?|sunlight, water and air|sand, salt and oil|rocks, dust and ice|metal, glass and wood
Which part of the body helps digest food?|the stomach|the ears|the hair|the nails
What do our teeth do?|break food into smaller pieces|pump blood around the body|help us hear music|keep the body warm
Which habit helps keep teeth healthy?|brushing them every day|eating candy all day|never drinking water|sleeping with gum in
What is the best way to stop germs from spreading?|washing hands with soap|touching your face often|sharing used tissues|sneezing into the air
Why do people wear coats in winter?|to keep their bodies warm|to keep their bodies cool|to make their bodies wet|to help them run faster
What happens to ice when it is left in the sun?|it melts into water|it turns into wood|it becomes harder|it grows bigger
What happens to the water in a puddle on a hot sunny day?|it evaporates|it freezes|it turns to sand|it gets deeper
What is the main job of the skeleton?|to support and protect the body|to digest food and drink|to carry oxygen in the blood|to help us taste food
Which of these animals breathes air with lungs and lives in the ocean?|a whale|a shark|a tuna|a crab
What is a baby frog called?|a tadpole|a puppy|a kitten|a calf
What is a baby cat called?|a kitten|a puppy|a foal|a chick
What is a baby dog called?|a puppy|a kitten|a calf|a lamb
What is a baby cow called?|a calf|a puppy|a kitten|a chick
What is a young sheep called?|a lamb|a calf|a foal|a kitten
What do spiders spin to catch insects?|webs|nests|shells|hives
How many legs does a spider have?|eight|six|four|ten
How many legs does an insect have?|six|eight|four|two
Which of these animals is an insect?|an ant|a spider|a snail|a worm
What do cows mostly eat?|grass|meat|fish|rocks
What is the main food of a giant panda?|bamboo|fish|meat|rice
What does a thermometer measure?|temperature|weight|length|speed
What does a bathroom scale measure?|weight|temperature|time|color
What does a clock measure?|time|weight|height|heat
What does a ruler measure?|length|weight|temperature|time
Which of these conducts electricity best?|a copper wire|a rubber band|a wooden spoon|a plastic cup
Which material is a good electrical insulator?|rubber|copper|iron|silver
Why does a metal spoon get hot when it sits in hot soup?|metal conducts heat well|metal makes its own heat|the spoon is magnetic|soup is very heavy
What usually happens when you drop a ball?|it falls to the ground|it floats up to the sky|it stays in the air|it turns into water
What makes a sailboat move across the water?|the wind|the moon|the sand|the fish
Which season is usually the coldest?|winter|summer|spring|autumn
In which direction does the Sun rise?|east|west|north|south
In which direction does the Sun set?|west|east|north|south
How many days are in a week?|seven|five|ten|twelve
How many hours are in a day?|twenty-four|twelve|sixty|one hundred
How many minutes are in an hour?|sixty|ten|twenty-four|one hundred
What is the largest animal on Earth?|the blue whale|the elephant|the giraffe|the lion
Which animal has the longest neck?|the giraffe|the mouse|the rabbit|the penguin
What do plants release into the air that animals need?|oxygen|smoke|dust|salt
Which part of a plant makes seeds?|the flower|the root|the bark|the soil
Which part of a plant carries water from the roots to the leaves?|the stem|the flower|the seed|the petal
What do we call animals that are active at night and sleep during the day?|nocturnal|aquatic|frozen|extinct
What does it mean when a kind of animal is extinct?|none of them are alive anymore|they live only in cold places|they sleep during the winter|they can change their color
Why do some animals hibernate?|to survive the cold winter|to grow new feathers|to find a mate in summer|to learn how to swim
Which of these animals has a hard shell?|a turtle|a dog|a horse|a cat
What do we call a person who studies the stars and planets?|an astronomer|a dentist|a farmer|a baker
What is the job of a doctor?|to help sick people get better|to fly airplanes across the sea|to build houses out of brick|to teach dogs to do tricks
Where would you go to borrow a book?|a library|a bakery|a garage|a swimming pool
What do people use to cut paper?|scissors|a spoon|a pillow|a towel
Which of these is a fruit?|an apple|a carrot|a potato|an onion
Which of these is a vegetable?|a carrot|a banana|a cherry|a grape
What color do you get by mixing blue and yellow paint?|green|red|purple|orange
What color is the sky on a clear, sunny day?|blue|green|red|brown
What color are the leaves of most plants?|green|blue|purple|black
Which body part do people use to smell?|the nose|the elbow|the knee|the ear
Why do we see lightning before we hear the thunder?|light travels faster than sound|sound travels faster than light|thunder happens later in the day|our eyes are bigger than our ears
What is the main cause of ocean tides?|the pull of the Moon's gravity|the wind blowing on the water|fish swimming in large groups|rain falling on the ocean
What is a fossil?|the preserved remains of an ancient living thing|a shiny stone that grows in caves|a kind of metal found in mountains|a type of cloud seen in winter
What do we call the mix of rock bits and dead plants that plants grow in?|soil|glass|steel|plastic
What is erosion?|the wearing away of rock and soil by wind and water|the growing of new plants from seeds|the freezing of water into ice|the melting of metal in a fire
What does a seed grow into?|a new plant|a small rock|a cloud|a fish
What do we call the natural home of an animal?|its habitat|its skeleton|its orbit|its shadow
Which of these animals lives in water?|a fish|a cow|a goat|a camel
Why do the leaves of many trees change color in autumn?|they stop making green chlorophyll|the wind paints them new colors|they soak up color from the soil|the rain washes the green away
What is the job of the lungs?|to take in oxygen from the air|to pump blood through the body|to break down the food we eat|to hold up the body
What do red blood cells carry around the body?|oxygen|sand|sound|light
Which organ controls thinking and movement?|the brain|the stomach|the liver|the skin
What is the hardest natural material?|diamond|chalk|wood|paper
What is the name of the force that slows down a box sliding on the floor?|friction|magnetism|electricity|light
A ball is rolling across a carpet. What makes it slow down and stop?|friction with the carpet|the color of the ball|the light in the room|the sound it makes
What happens to a green plant that is kept in a dark closet for weeks?|it becomes weak and pale|it grows faster and greener|it turns into a tree|it makes more flowers
What does an animal need to survive?|food, water and air|toys, music and light|money, books and clothes|salt, sand and stones
Which of these is a living thing?|a tree|a rock|a cloud|a chair
What is the young of a butterfly called?|a caterpillar|a tadpole|a puppy|a chick
How does a snake move from place to place?|by sliding on its belly|by flapping its wings|by hopping on two legs|by rolling like a ball
What do most birds build to lay their eggs in?|nests|webs|dams|hives
What do beavers build across streams?|dams|nests|webs|hives
Where do honeybees live?|in a hive|in a den|in a pond|in a shell
What force makes a magnet stick to a refrigerator door?|magnetism|gravity|friction|heat
Which of these objects would a magnet pick up?|a paper clip|a paper cup|a wooden block|a glass marble
What happens when you rub your hands together quickly?|they get warmer|they get colder|they get wetter|they get smaller
Why does a metal slide feel hot on a sunny afternoon?|it absorbs heat from the sunlight|it is plugged into the electricity|metal makes its own heat inside|the wind heats it up quickly
Which clothing keeps you coolest on a hot sunny day?|light-colored loose clothing|a thick black wool coat|several layers of sweaters|a heavy rubber raincoat
What is the shape of Earth?|round like a ball|flat like a plate|square like a box|long like a stick
What is at the center of our solar system?|the Sun|the Earth|the Moon|Jupiter
What are stars mostly made of?|hot glowing gas|solid gray rock|frozen water|liquid metal
What do we call a scientist who studies living things?|a biologist|a geologist|a pilot|a painter
Which of these is a good way to save water at home?|turning off the tap while brushing teeth|leaving the shower running all day long|watering the lawn at noon every day|letting the kitchen tap drip all night
Which of these is a good way to reduce waste?|recycling paper and bottles|throwing food in the trash|using plastic bags only once|buying more than you need
What happens when you stir salt into warm water?|the salt dissolves|the salt turns into sugar|the water turns to ice|the salt catches fire
What is steam?|water that has turned into a gas|ice that has turned into rock|salt that has turned into sand|air that has turned into metal
What does a food chain show?|which living things eat which|how fast animals can run|where plants go in winter|how tall trees can grow
Which of these animals eats mostly meat?|a lion|a cow|a rabbit|a deer
What is the largest organ of the human body?|the skin|the heart|the eye|the tongue
What keeps the planets moving around the Sun?|gravity|wind|sound|electricity
What is the name of the imaginary line around the middle of Earth?|the equator|the horizon|the skyline|the shoreline
What is the weather usually like near the equator?|hot all year round|covered in snow all year|freezing cold every summer|dark for half the year
Which continent is the coldest place on Earth?|Antarctica|Africa|Australia|South America
Which river is the longest in Africa?|the Nile|the Thames|the Seine|the Danube
How does a houseplant on a windowsill respond to sunlight?|it bends toward the light|it bends away from the light|it grows straight down|it stops growing at all
Which material would be best for making a raincoat?|plastic|paper|wool|cardboard
Which material would be best for building a strong bridge?|steel|paper|ice|rubber
Which tool would help you see a small bug more clearly?|a magnifying glass|a tape measure|a thermometer|a stopwatch
Why is it important to repeat a science experiment?|to check that the results are reliable|to make the experiment more colorful|to use up all of the materials|to make the experiment last longer
What does a plant cell have that an animal cell does not?|a cell wall|a nucleus|a membrane|cytoplasm
What kind of energy does a moving car have?|kinetic energy|stored energy only|no energy at all|magnetic energy
Burning wood to make ash and smoke is an example of what?|a chemical change|a change in size|a change in shape|a change in color only
Which of these is an example of a chemical change?|an iron nail rusting|ice melting in a glass|paper being torn|water boiling in a pot
Which of these is a simple machine?|a lever|a computer|a television|a refrigerator
What do we call a push or a pull on an object?|a force|a mass|a color|a sound
What happens when you kick a ball harder?|it goes farther and faster|it goes slower and shorter|it changes to a different color|it becomes much lighter
Which of these would heat up fastest in the sun?|a black shirt|a white shirt|a glass mirror|a glass of ice water
What is the main source of energy for most food chains on Earth?|the Sun|the Moon|volcanoes|the wind
Which planet is known as the Red Planet?|Mars|Venus|Saturn|Neptune
Which planet is famous for its large, bright rings?|Saturn|Mercury|Mars|Earth
What must astronauts bring into space in order to breathe?|oxygen|sand|soil|salt
Which of these items can be recycled?|a glass bottle|a used tissue|a broken egg|a wet paper towel
How do earthworms help the soil?|they loosen it and let air in|they freeze the soil solid|they turn the soil into rock|they remove all the water
What do bees carry from flower to flower?|pollen|sand|salt|smoke
What happens to most maple and oak trees in winter?|they lose their leaves|they grow new flowers|they turn bright blue|they move to warmer places
What is a desert?|a very dry place that gets little rain|a very wet forest with tall trees|a frozen place covered in ice|a deep part of the ocean
Which animal can change its skin color to blend in?|a chameleon|a cow|a horse|a sheep
What do we call a body feature, like thick fur in the cold, that helps an animal survive?|an adaptation|a disease|an accident|a mistake
What is the main job of a plant's leaves?|to make food using sunlight|to hold the plant in the soil|to attract worms to the roots|to store rocks for the plant
What is the meal eaten in the morning called?|breakfast|dinner|supper|dessert
Where do people usually keep milk so that it stays cold?|in a refrigerator|in an oven|in a closet|in a bathtub
What do people use an umbrella for?|to stay dry in the rain|to cook their food|to clean the floor|to tell the time
What is a chair used for?|sitting|cooking|swimming|writing
What do you need to open a locked door?|a key|a spoon|a pillow|a leaf
Which of these would you use to write on paper?|a pencil|a fork|a shoe|a cup
What do you use to talk to someone who is far away?|a telephone|a toaster|a hammer|a blanket
Why do people cook meat before eating it?|to kill germs and make it safe|to make it cold and hard|to change its color to blue|to make it heavier
What do people use to dry themselves after a shower?|a towel|a plate|a book|a shoe
Where does a pilot work?|in an airplane|in a bakery|in a classroom|on a farm
Which weighs more, a kilogram of iron or a kilogram of feathers?|they weigh the same|the iron weighs more|the feathers weigh more|it depends on the color
If you put a glass of water in the freezer overnight, what will you find in the morning?|ice|steam|sand|juice
What happens to a bicycle tire if all the air leaks out?|it goes flat|it gets bigger|it turns hard|it starts to float
What do firefighters use to put out most fires?|water|oil|paper|wood
What do people wear on their heads to protect them when riding a bike?|a helmet|a scarf|a glove|a sock
Which animal is known for carrying its babies in a pouch?|the kangaroo|the horse|the chicken|the goldfish
What do we call the large body of salt water that covers most of Earth?|the ocean|the desert|the forest|the mountain
Which of these is the best source of calcium for strong bones?|milk|candy|soda|chips
What does the heart pump through the body?|blood|air|food|water
What is the frozen water that falls from clouds in soft white flakes?|snow|rain|hail|fog
What do we call a word for a period of 100 years?|a century|a decade|a month|a week
"""
