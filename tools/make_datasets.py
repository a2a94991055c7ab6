#!/usr/bin/env python
"""Generate MoP's small offline datasets (deterministic, no network).

Writes
  mop/assets/instructions.json        400 Alpaca-style records (calibration + LoRA recovery)
  mop/evaluate/tasks/data/mop_heldout.jsonl    held-out instruction texts for the perplexity task
                                      mop_heldout_ppl: never calibration or recovery data
  mop/evaluate/tasks/data/mop_arc.jsonl        ARC-style 4-way science / common-sense questions
  mop/evaluate/tasks/data/mop_piqa.jsonl       PIQA-style 2-way physical common sense
  mop/evaluate/tasks/data/mop_hellaswag.jsonl  HellaSwag-style 4-way sentence completion

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
HELDOUT_PATH = TASK_DIR / "mop_heldout.jsonl"


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
Which gas do plants take in from the air to make their food?|carbon dioxide|helium|carbon monoxide|chlorine
Which gas do people need to breathe in to stay alive?|oxygen|helium|neon|argon
What is the main source of light for Earth during the day?|the Sun|the Moon|the ocean|the clouds
At what temperature in degrees Celsius does water freeze?|0 degrees|50 degrees|100 degrees|30 degrees
At what temperature in degrees Celsius does water boil at sea level?|100 degrees|0 degrees|10 degrees|45 degrees
What is the solid form of water called?|ice|steam|fog|juice
What is water vapor?|water in the form of a gas|water in the form of a solid|a kind of rock|a kind of salt
Which of these animals is a mammal?|a dog|a shark|a frog|a snake
Which of these animals lays eggs?|a chicken|a cow|a horse|a dog
What do caterpillars turn into?|butterflies|spiders|frogs|grasshoppers
What do bees make from the nectar of flowers?|honey|milk|silk|wool
Which organ pumps blood through the body?|the heart|the lungs|the stomach|the skin
Which organs do people use to breathe?|the lungs|the kidneys|the ears|the bones
Which sense organs do people use to see?|the eyes|the ears|the nose|the tongue
Which sense organs do people use to hear sounds?|the ears|the eyes|the knees|the hands
What is the hard bone that protects the brain?|the skull|the rib|the spine|the knee
What force pulls objects toward the ground?|gravity|light|sound|heat
What usually happens to a metal rod when it is heated?|it expands|it shrinks|it freezes|it vanishes
Which material is attracted to a magnet?|iron|wood|glass|plastic
What kind of energy is stored in a battery?|chemical energy|sound energy|wind energy|magnetic energy
Which planet do we live on?|Earth|Mars|Venus|Jupiter
Which planet is closest to the Sun?|Mercury|Neptune|Saturn|Uranus
What is the largest planet in our solar system?|Jupiter|Mercury|Mars|Venus
What causes day and night on Earth?|Earth spinning on its axis|the Moon blocking the Sun|clouds covering the sky|the Sun turning off at night
How long does it take Earth to travel once around the Sun?|about one year|about one day|about one week|about one hour
What is the Moon?|a natural satellite that orbits Earth|a star that makes its own light|a planet that is much bigger than Earth|a cloud of gas in the sky
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
Why do many birds fly south in the autumn?|to find warmer weather and food|to look for snow to play in|to get away from the sunlight|to find colder places to live in
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
Which of these is a source of light?|a candle flame|a polished mirror|a rock|a book
What causes sound?|vibrations|colors|shadows|temperatures
On which surface would a rolling ball travel the farthest?|smooth ice|thick grass|deep sand|soft mud
Which object would float in water?|a piece of wood|a steel nail|a heavy iron anchor|a gold coin
What do we call the path a planet takes around the Sun?|an orbit|an axis|a crater|a comet
Which star is closest to Earth?|the Sun|the North Star|Sirius|Vega
Why does the Moon appear to shine at night?|it reflects light from the Sun|it burns like a big fire|it is full of glowing gas|it is covered in light bulbs
What is the largest ocean on Earth?|the Pacific Ocean|the Indian Ocean|the Arctic Ocean|the Southern Ocean
On which layer of Earth do we live?|the crust|the inner core|the outer core|the mantle
What is a volcano?|an opening in the ground where melted rock comes out|a deep lake formed by melting snow|a tall mountain made only of ice|a large storm that forms over the warm ocean water
What kind of storm has a spinning, funnel-shaped cloud?|a tornado|a drizzle|a frost|a fog
What do we call small balls of ice that fall from storm clouds?|hail|fog|dew|mist
What do we call the amount of matter in an object?|mass|color|speed|sound
Which unit is used to measure temperature?|degrees|meters|liters|grams
Which unit is used to measure the mass of an apple?|grams|meters|liters|seconds
Which unit is used to measure the length of a pencil?|centimeters|liters|grams|degrees
Which unit is used to measure how much liquid is in a bottle?|liters|meters|degrees|hours
What does a green plant need to make its food?|sunlight, water and air|sand, salt and oil|rocks, dust and ice|metal, glass and wood
Which part of the body helps digest food?|the stomach|the ears|the hair|the nails
What do our teeth do?|break food into smaller pieces|pump blood from the heart to the body|help us hear music|keep the body warm
Which habit helps keep teeth healthy?|brushing them every day|eating candy all day long|never drinking water|sleeping with gum in
What is the best way to stop germs from spreading?|washing hands with soap|touching your face often|sharing used tissues|sneezing into the air
Why do people wear coats in winter?|to keep their bodies warm|to keep their bodies cool|to make their bodies wet|to help them run faster
What happens to ice when it is left in the sun?|it melts into water|it turns into wood|it becomes harder|it grows bigger
What happens to the water in a puddle on a hot sunny day?|it evaporates|it freezes|it turns to sand|it gets deeper
What is the main job of the skeleton?|to support and protect the body|to digest food and drink|to carry oxygen through the blood|to help us taste food
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
What is the main food of a giant panda?|bamboo|fish|meat|seaweed
What does a thermometer measure?|temperature|weight|length|wind direction
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
What is the largest animal on Earth?|the blue whale|the hippopotamus|the giraffe|the lion
Which animal has the longest neck?|the giraffe|the mouse|the rabbit|the penguin
What do plants release into the air that animals need?|oxygen|smoke|dust|salt
Which part of a plant makes seeds?|the flower|the root|the bark|the soil
Which part of a plant carries water from the roots to the leaves?|the stem|the flower|the seed|the petal
What do we call animals that are active at night and sleep during the day?|nocturnal|aquatic|frozen|extinct
What does it mean when a kind of animal is extinct?|none of them are alive anymore|they live only in cold places|they sleep during the winter|they can change their color
Why do some animals hibernate?|to survive the cold winter|to grow new feathers|to find a mate in summer|to learn how to swim
Which of these animals has a hard shell?|a turtle|a dog|a horse|a cat
What do we call a person who studies the stars and planets?|an astronomer|a dentist|a mail carrier|a baker
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
What is a fossil?|the preserved remains of an ancient living thing|a shiny stone that grows in caves|a kind of shiny metal found deep inside tall mountains|a type of cloud seen in winter
What do we call the mix of rock bits and dead plants that plants grow in?|soil|glass|steel|plastic
What is erosion?|the wearing away of rock and soil by wind and water|the growing of new plants from seeds in the spring soil|the freezing of water into ice|the melting of metal in a fire
What does a seed grow into?|a new plant|a small rock|a cloud|a fish
What do we call the natural home of an animal?|its habitat|its skeleton|its orbit|its shadow
Which of these animals lives in water?|a fish|a cow|a goat|a camel
Why do the leaves of many trees change color in autumn?|they stop making green chlorophyll|the wind paints them new colors|they soak up bright colors from the soil|the rain washes the green away
What is the job of the lungs?|to take in oxygen from the air|to pump blood through the body|to break down the food we eat|to hold up the body
What do red blood cells carry around the body?|oxygen|sand|sound|light
Which organ controls thinking and movement?|the brain|the stomach|the liver|the skin
What is the hardest natural material?|diamond|chalk|wood|paper
What is the name of the force that slows down a box sliding on the floor?|friction|magnetism|electricity|light
A ball is rolling across a carpet. What makes it slow down and stop?|friction with the carpet|the bright color of the ball|the light in the room|the sound it makes
What happens to a green plant that is kept in a dark closet for weeks?|it becomes weak and pale|it grows faster and greener|it turns into a tree|it makes more flowers
What does an animal need to survive?|food, water and air|toys, music and light|money, books and clothes|salt, sand and stones
Which of these is a living thing?|a tree|a rock|a cloud|a chair
What is the young of a butterfly called?|a caterpillar|a tadpole|a young kitten|a chick
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
What is steam?|water that has turned into a gas|ice that has turned into rock|salt that has slowly turned into sand|air that has turned into metal
What does a food chain show?|which living things eat which|how fast different animals can run|where plants go in winter|how tall trees can grow
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
Which tool would help you see a small bug more clearly?|a magnifying glass|a tape measure|a thermometer|a pair of earmuffs
Why is it important to repeat a science experiment?|to check that the results are reliable|to make the experiment look more colorful|to use up all of the materials|to make the experiment last longer
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
What is a desert?|a very dry place that gets little rain|a very wet forest with tall trees|a frozen place covered in thick ice and snow|a deep part of the ocean
Which animal can change its skin color to blend in?|a chameleon|a cow|a hippopotamus|a sheep
What do we call a body feature, like thick fur in the cold, that helps an animal survive?|an adaptation|a sudden illness|an accident|a mistake
What is the main job of a plant's leaves?|to make food using sunlight|to hold the plant in the soil|to attract worms to the roots|to store rocks for the plant
What is the meal eaten in the morning called?|breakfast|dinner|afternoon tea|dessert
Where do people usually keep milk so that it stays cold?|in a refrigerator|in an oven|in a kitchen cupboard|in a bathtub
What do people use an umbrella for?|to stay dry in the rain|to cook their food on a campfire|to clean the floor|to tell the time
What is a chair used for?|sitting|cooking|swimming|writing
What do you need to open a locked door?|a key|a spoon|a pillow|a leaf
Which of these would you use to write on paper?|a pencil|a fork|a teaspoon|a cup
What do you use to talk to someone who is far away?|a telephone|a toaster|a flashlight|a blanket
Why do people cook meat before eating it?|to kill germs and make it safe|to make it cold and hard|to change its color to bright blue|to make it heavier
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


# ---------------------------------------------------------------------------
# PIQA-style: goal | sensible solution | unworkable solution
# ---------------------------------------------------------------------------
PIQA = """
How do I cool down a hot cup of tea quickly?|Add a few ice cubes to it.|Add a few hot coals to it.
How can I keep bread fresh for longer?|Store it in a sealed plastic bag.|Store it in a bowl of warm water.
How do I make a paper airplane?|Fold a sheet of paper into a pointed shape with wings.|Crumple a sheet of paper into a tight ball and wet it.
How do I dry wet clothes?|Hang them on a line in the sun.|Put them in the freezer overnight.
How can I stop a door hinge from squeaking?|Put a few drops of oil on the hinge.|Put a spoonful of sugar on the hinge.
How do I sharpen a pencil?|Turn it inside a pencil sharpener.|Dip it into a glass of milk.
How should I clean a dirty kitchen floor?|Sweep it and then mop it with soapy water.|Sprinkle it with flour and walk on it.
How do I boil an egg?|Put the egg in a pot of water and heat it until the water boils.|Put the egg in a pot of sand and leave it in the fridge.
How can I light up a dark room?|Turn on a lamp.|Close all the curtains.
How do I keep ice cream from melting?|Keep it in the freezer.|Keep it on a sunny windowsill.
How do I make a cup of coffee?|Pour hot water over ground coffee.|Pour cold sand over whole beans.
How can I carry water to my garden plants?|Use a watering can.|Use a kitchen sieve.
How do I open a jar with a very tight lid?|Run the lid under hot water and then twist it.|Put the jar in the freezer and then shake it.
How do I get a splinter out of my finger?|Use clean tweezers to pull it out gently.|Use a hammer to push it in deeper.
How can I find my way out of a large forest?|Use a map and a compass.|Follow the first bird you see.
How do I hang a picture on the wall?|Hammer a small nail into the wall and hang the frame on it.|Tape the frame to the ceiling with a piece of wet string.
How do I cut a sheet of paper in half?|Use a pair of scissors.|Use a wet sponge.
How do I make a simple sandwich?|Put some filling between two slices of bread.|Put two slices of bread inside a cup of milk.
How can I make sure I wake up on time?|Set an alarm clock before going to bed.|Hide every clock in the house before bed.
How can I keep my hands warm in winter?|Wear a pair of wool gloves.|Hold a handful of snow.
How should I water a potted plant?|Pour water into the soil around it.|Pour salt into the soil around it.
How do I put out a small campfire?|Pour water over it and stir the ashes.|Pour oil over it and add more wood.
How do I tie my shoelaces?|Cross the laces, make loops, and pull them tight.|Wrap the laces around your ankle and cut them.
How do I clean a brush after using water-based paint?|Rinse it under warm running water.|Leave it in the paint can for a week.
How do I make a glass of lemonade?|Mix lemon juice, water and sugar.|Mix lemon peel, sand and salt.
How do I stop a nosebleed?|Pinch your nose and lean forward.|Blow your nose as hard as you can.
How can I protect my skin from sunburn?|Put on sunscreen before going outside.|Put on butter before going outside.
How do I keep a dog cool on a hot day?|Give it fresh water and a shady place to rest.|Give it a wool sweater and leave it in the car.
How can I make my phone battery last longer?|Lower the screen brightness.|Turn the screen brightness all the way up.
How do I make toast?|Put a slice of bread in a toaster.|Put a slice of bread in a freezer.
How can I soften hard butter quickly?|Leave it out at room temperature for a while.|Put it in the coldest part of the freezer for an hour.
How can I carry a lot of groceries at once?|Use a large sturdy shopping bag.|Use a small paper envelope.
How do I safely reach something on a high shelf?|Stand on a sturdy step stool.|Stand on a spinning office chair.
How do I clean a window?|Spray it with glass cleaner and wipe it with a cloth.|Spray it with honey and wipe it with a dry leaf.
How can I tell if a cake is baked all the way through?|Insert a toothpick in the middle and check that it comes out clean.|Tap the top of the cake and check that it makes a loud ringing sound.
How do I keep food from sticking to a frying pan?|Add a little oil to the pan before cooking.|Add a little sugar to the empty pan and wait.
How do I fix a flat bicycle tire?|Patch the hole and pump air into the tube.|Paint the tire and let more air out.
How can I cool a room on a hot day?|Turn on a fan and close the curtains.|Turn on the oven and open the curtains.
How do I wash my hands properly?|Scrub them with soap and water for twenty seconds.|Wipe them quickly on the dusty floor and then on your trousers.
How do I help a plant grow well?|Give it sunlight, water and good soil.|Keep it in a dark box without water.
How do I melt chocolate for baking?|Heat it gently in a bowl over warm water.|Put it in the freezer until it is soft.
How do I fold a shirt neatly?|Lay it flat, fold in the sleeves, then fold it in half.|Roll it into a ball and throw it into the drawer.
How do I fill a balloon with air?|Blow into its opening and tie a knot.|Poke a hole in it and squeeze it.
How can I stay dry when it starts raining?|Open an umbrella over your head.|Hold a sieve over your head.
How can I find a lost earring on the carpet?|Shine a flashlight low across the carpet.|Turn off all the lights and close your eyes.
How should I take care of a small cut?|Wash it and cover it with a bandage.|Rub some dirt on it and leave it open.
How do I cook rice?|Simmer it in water until the water is absorbed.|Soak it in a bowl of cold cooking oil for a few seconds.
How do I loosen a screw?|Turn it counterclockwise with a screwdriver.|Tap it gently with a soft feather for a few minutes.
How should I store leftover soup?|Let it cool and put it in a covered container in the fridge.|Leave it uncovered on the kitchen counter for a week.
How do I send a letter to a friend?|Put a stamp on the envelope and drop it in a mailbox.|Put the letter in the fridge and wait for a reply.
How do I wrap a present?|Cover the box with wrapping paper and tape the edges.|Cover the box with wet sand and shake it well.
How do I peel a banana?|Pull the skin down in strips from the stem end.|Boil it whole until the skin turns into juice.
How can I see the page better when reading at night?|Turn on a reading lamp.|Put on dark sunglasses.
How do I get rid of a bad smell in the fridge?|Put an open box of baking soda inside.|Put an open bowl of old fish inside.
How do I cross a busy street safely?|Wait for the green light and look both ways.|Close your eyes and run across quickly.
How do I clean up spilled milk on a table?|Wipe it up with a paper towel.|Spread it around with a broom.
How can I make water boil faster?|Put a lid on the pot.|Put the pot in the sink.
How do I keep a salad from getting soggy?|Add the dressing just before serving.|Add the dressing the night before.
How should I carry a hot pan out of the oven?|Use oven mitts.|Use your bare hands.
How do I unclog a sink drain?|Use a plunger on the drain.|Pour cooking grease down the drain.
How can I make a stuffy room smell fresh?|Open a window to let in fresh air.|Close the windows and leave old trash in the corner.
How can I remember a new phone number?|Write it down in a notebook.|Say it once and then forget it.
How do I put air in a car tire?|Use an air pump at a gas station.|Use a vacuum cleaner on the tire.
How do I make ice cubes?|Fill an ice tray with water and put it in the freezer.|Fill an ice tray with water and put it in the oven.
How do I stop my sneakers from smelling?|Let them dry out and sprinkle baking soda inside.|Keep them wet and store them in a sealed bag.
How can I warm up cold hands quickly?|Rub them together quickly.|Dip them in icy water.
How do I take a photo with my phone?|Open the camera app and press the shutter button.|Open the calculator app and press the equals button.
How do I make my bed in the morning?|Straighten the sheets and pull up the blanket.|Throw the pillows on the floor and walk away.
How can I avoid slipping on an icy sidewalk?|Spread salt or sand on the ice.|Spread oil or soap on the ice.
How do I dig a hole in the garden?|Use a shovel.|Use a paper plate.
How should I lift a heavy box?|Bend your knees and lift with your legs.|Bend your back and lift with your fingertips.
How do I keep cookies soft?|Store them in an airtight container.|Store them in an open basket in the sun.
How can I calm a crying baby?|Feed it or rock it gently in your arms.|Turn up loud music right next to it.
How do I make a simple bird feeder?|Spread peanut butter on a pine cone and roll it in seeds.|Spread glue on a pine cone and roll it in sand.
How do I clean a greasy frying pan?|Wash it with hot water and dish soap.|Rub it with a handful of dry sand and butter.
How do I charge my phone?|Plug it into a charger.|Put it in the microwave.
How can I pick up broken glass safely?|Wear thick gloves and use a broom and dustpan.|Walk on it barefoot and pick it up with your toes.
How do I start a car?|Turn the key or press the start button.|Turn the steering wheel very quickly.
What should I use to eat a bowl of soup?|A spoon.|A fork.
What should I use to cut a thick steak?|A sharp knife.|A soup spoon.
How do I cook pasta?|Boil it in salted water for about ten minutes.|Soak it in cold water for about ten seconds.
How can I get a good night's sleep?|Go to bed at the same time each night in a dark, quiet room.|Drink several cups of strong coffee right before going to bed.
How do I keep my bike from being stolen?|Lock it to a bike rack with a strong lock.|Leave it unlocked in front of a busy store.
How do I stay hydrated while exercising?|Drink water before, during and after.|Drink nothing until the next day.
How do I remove wrinkles from a shirt?|Iron it on a low heat setting.|Crumple it up and sit on it.
How can I find out how much a bag of apples weighs?|Put it on a scale.|Put it in a drawer.
How do I grow tomatoes?|Plant seeds in sunny soil and water them regularly.|Plant seeds in a dark closet and never water them.
How do I keep a fire burning in the fireplace?|Add dry logs as the fire gets smaller.|Add wet leaves as the fire gets smaller.
How can I make a drink cold without using ice?|Put it in the refrigerator for an hour.|Put it in the microwave for an hour.
How do I clean dusty shelves?|Wipe them with a damp cloth.|Sprinkle them with flour.
How do I brush my teeth?|Put toothpaste on a toothbrush and scrub gently.|Put toothpaste on a hairbrush and scrub hard.
How do I thread a needle?|Push the end of the thread through the small hole.|Wrap the thread loosely around the sharp tip of the needle.
How do I seal an envelope?|Moisten the flap or use a glue stick and press it shut.|Cut the flap off with scissors and leave the envelope wide open.
How do I stop a small cut from bleeding?|Press a clean cloth firmly on the cut.|Run around the room as fast as you can.
How can I keep my houseplant alive while I am on vacation?|Ask a neighbor to water it.|Put it in a closet with no light.
How should I help someone who feels faint from the heat?|Move them into the shade and give them cool water.|Wrap them in blankets and give them hot soup.
How can I keep my feet warm at night?|Wear thick socks to bed.|Sleep with your feet out of the window.
How do I clean a muddy dog?|Wash it with dog shampoo and warm water.|Roll it in more mud and leave it outside.
How do I make popcorn?|Heat corn kernels in a covered pot with a little oil.|Soak the corn kernels in a bowl of cold water in the fridge overnight.
How do I sweeten a cup of tea?|Stir in a spoonful of honey or sugar.|Stir in a spoonful of salt or pepper.
How can I find out what the weather will be tomorrow?|Check the weather forecast.|Look at old photos from last year.
How can I keep papers from blowing away outside?|Put a heavy stone on top of them.|Put a light feather on top of them.
How do I paint a wall evenly?|Use a roller and apply thin coats.|Throw the paint at the wall from far away.
How can I protect a wooden table from a hot pot?|Put a thick mat under the pot.|Put an ice cube under the pot.
How do I make a fruit smoothie?|Blend fruit with yogurt or milk.|Boil fruit with sand and salt.
How can I keep a door from closing by itself?|Place a doorstop against it.|Place a balloon against it.
How can I fall asleep on a noisy night?|Wear earplugs.|Turn on a loud radio.
How can I check whether a stove burner is still hot?|Hold your hand above it without touching it.|Press your palm flat on it for ten seconds.
How should I carry soup to a friend's house?|Pour it into a container with a tight lid.|Pour it into an open paper bag and carry it by the bottom.
How do I catch a ball?|Watch it closely and close your hands around it.|Close your eyes tightly and turn around to face the other way.
What is a safe way to learn to swim?|Take lessons with an instructor in a shallow pool.|Jump alone into the deep, cold sea in the middle of a stormy night.
How can I keep a notebook dry in my backpack?|Put it in a plastic bag.|Put it next to an open water bottle.
How can I avoid getting lost in a big city?|Use a map app on your phone.|Walk in a random direction all day.
How do I freshen up stale bread?|Sprinkle it with water and warm it in the oven.|Leave it out on the windowsill in the hot sun for another week.
How do I make a pillow fluffy again?|Shake it and pat it a few times.|Soak it in water and leave it flat.
How can I save money?|Spend less than you earn and save the rest.|Spend more than you earn every month.
How do I stop my puppy from chewing my shoes?|Give it chew toys and put the shoes away.|Leave the shoes on the floor next to its bed.
How do I build a snowman?|Roll snow into three balls and stack them.|Pile sand into a heap and pour water on it.
How can I check the time if I do not have a watch?|Look at the clock on your phone.|Look at the bottom of your shoe.
How do I make a bowl of cereal?|Pour cereal into a bowl and add milk.|Pour milk into a shoe and add cereal.
How should I clean a computer screen?|Wipe it gently with a soft dry cloth.|Scrub it hard with steel wool.
How can I keep a room warm in winter?|Close the windows and turn on the heater.|Open all the windows and turn on a fan.
How do I cut a pizza into slices?|Use a pizza cutter or a sharp knife.|Use a drinking straw or a spoon.
How can I make a candle burn more cleanly?|Trim the wick before lighting it.|Light both ends of the candle.
How do I find a small hole in a bike tube?|Pump it up and dip it in water to look for bubbles.|Let all the air out, fold it up and shake it gently near your ear.
How do I get a kite to fly?|Run into the wind while holding the string.|Stand still indoors with the windows closed.
How do I hammer a nail into wood?|Hold the nail steady and tap it with a hammer.|Hold the hammer steady and tap it with the nail.
How do I dry my hair after a shower?|Use a towel or a hair dryer.|Use a bowl of cold water.
How can I avoid a sunburn at the beach?|Sit under an umbrella and wear a hat.|Lie in the direct sun at noon without sunscreen.
How do I make a cup of tea?|Steep a tea bag in hot water for a few minutes.|Steep a tea bag in cold oil for a few seconds.
How do I rinse fresh vegetables?|Hold them under cool running water.|Hold them over a hot stove.
How do I sew a button onto a shirt?|Stitch through the holes of the button and the fabric.|Glue the button to the end of the needle and wave it at the shirt.
How do I wash a car?|Use a bucket of soapy water and a sponge.|Use a bucket of sand and a wire brush.
How do I open a can of soup?|Use a can opener.|Use a rubber band.
How can I make a cake rise?|Add baking powder to the batter.|Add ice cubes to the batter.
How can I avoid burning my toast?|Set the toaster to a lower setting.|Set the toaster to the highest setting and leave.
How can I protect my eyes when cutting wood?|Wear safety goggles.|Wear a baseball cap.
How can I play music loudly for a party?|Connect a phone to a speaker.|Connect a phone to a toaster.
How can I write more neatly?|Hold the pen firmly and write slowly.|Hold the pen loosely and write very fast.
How do I keep a glass of water from spilling when I walk?|Hold it upright and walk slowly.|Hold it upside down and run fast.
How do I make a hot bath?|Fill the tub with warm water from the tap.|Fill the tub with snow from the yard.
How do I cool down a hot bowl of soup?|Stir it and blow on it gently.|Put it back on the stove.
How can I see in the dark during a power cut?|Use a flashlight.|Use a mirror.
How can I keep my shoes dry in the rain?|Wear rubber boots.|Wear paper slippers.
How do I clean my glasses?|Wipe the lenses with a soft cloth.|Wipe the lenses with sandpaper.
How do I make my garden grass shorter?|Cut it with a lawn mower.|Cut it with a pair of nail clippers.
How do I get to the top floor of a tall building?|Take the elevator or the stairs.|Climb up the outside windows.
How do I stop a cold drink from getting warm at a picnic?|Keep it in a cooler with ice packs.|Keep it in a black bag in the sun.
How do I file a letter in an alphabetical filing cabinet?|Find the folder with its first letter and place it inside.|Put it on top of the cabinet, leave it there and forget about it.
How do I keep a baby safe in a car?|Buckle it into a proper car seat.|Let it sit loose on the front seat.
How can I carry hot coffee without spilling it?|Use a travel mug with a lid.|Pour it onto a flat dinner plate.
How do I stop a slice of apple from turning brown?|Squeeze a little lemon juice on it.|Leave it out in the warm air.
How do I get gum off the bottom of my shoe?|Harden it with an ice cube and scrape it off.|Heat it with a hair dryer and step on a carpet.
How do I cook an egg in a pan?|Crack it into a hot oiled pan and cook until set.|Crack it into a cold dry cup and leave it overnight.
How do I keep flowers fresh in a vase?|Change the water every day and trim the stems.|Leave the vase empty and put it in the sun.
How do I stop my glasses from sliding down my nose?|Have the frames adjusted to fit snugly.|Put a thick layer of butter on the nose pads every morning.
How do I make a room darker for sleeping?|Close thick curtains over the windows.|Open all the curtains and turn on the lights.
How can I get a stubborn stain out of a shirt?|Soak it in cold water with detergent before washing.|Rub it with chocolate and leave it in the sun.
How do I take a splinter out of a dog's paw?|Hold the paw gently and pull the splinter out with tweezers.|Tell the dog to run around until the splinter falls out.
How can I keep ants out of my kitchen?|Wipe up crumbs and store food in sealed containers.|Leave sticky jam spread on the floor near the door.
How do I give a cat a bath?|Use a little warm water and gentle cat shampoo.|Throw the cat into a cold swimming pool.
How can I cool down after a long run?|Walk slowly for a few minutes and drink water.|Sprint even faster and skip drinking water.
How do I keep rice from sticking to the pot?|Rinse it first and stir it once while cooking.|Cook it with no water on the highest heat.
How do I hang wet laundry indoors?|Drape it on a drying rack near a warm spot.|Pile it in a heap inside a closed closet.
How do I keep a tent from blowing away?|Push stakes into the ground through its loops.|Tie it to a big helium balloon floating in the middle.
How do I move a sofa through a narrow door?|Tip it on its side and turn it slowly through the doorway.|Push it straight at the door frame as hard as you can, again and again.
How can I tell if milk has gone bad?|Smell it and check for a sour odor.|Shake the carton and listen for bells.
How do I cool a hot car before driving?|Open the windows and turn on the air conditioning.|Close all the windows tightly and turn the heater up to the highest setting.
How do I grate cheese?|Rub the block of cheese against a grater.|Rub the block of cheese against a pillow.
How do I clean a cutting board after cutting raw chicken?|Wash it with hot soapy water.|Wipe it with a dry leaf.
How do I get my pet dog to come to me?|Call its name and offer a treat.|Run away from it and hide.
How can I tell which way is north at night?|Find the North Star in the sky.|Look for the brightest street lamp.
How do I make a sign easier to read from far away?|Use big, dark letters on a light background.|Use tiny, pale letters on a white background.
How can I make my voice heard in a noisy room?|Speak louder and face the person.|Whisper and turn away from the person.
How can I keep my phone from cracking if I drop it?|Put it in a protective case.|Put it in a glass jar.
How do I remove a price sticker from a glass jar?|Soak it in warm water and peel it off.|Paint over it with black marker.
How do I make a paper chain?|Cut strips of paper and glue them into linked loops.|Cut strips of paper and throw them into the air.
How can I keep my lunch cold until noon?|Pack it in an insulated bag with an ice pack.|Pack it in a paper bag on a hot radiator.
How do I put a fitted sheet on a bed?|Stretch each corner over a corner of the mattress.|Fold it into a small square and leave it on top of the pillow.
How do I make a hole in a belt?|Use a leather punch at the spot you need.|Use a pair of chopsticks to press on it.
How do I clean a stovetop after cooking?|Let it cool and wipe it with a soapy sponge.|Pour flour on it while it is still hot.
How do I measure the length of a room?|Stretch a tape measure from one wall to the other.|Count the number of lamps in the room and multiply by the chairs.
How do I make a quick ice pack?|Put a bag of frozen peas in a towel.|Put a bag of warm bread in a towel.
How can I keep a sandwich from getting squashed in my bag?|Pack it in a hard plastic box.|Pack it under a stack of heavy books.
How do I make a window stop rattling in the wind?|Push a folded piece of cardboard into the gap.|Open the window wider so it swings more.
How do I stop water from dripping from a tap?|Turn the handle until it is fully closed.|Hit the tap with a heavy hammer until the handle breaks off.
How do I get a cat down from a low branch?|Hold out a treat and let it climb onto a ladder.|Shake the tree as hard as you can until the cat falls down.
How do I water a lawn evenly?|Use a sprinkler that moves back and forth.|Pour one bucket of water in one corner.
How can I avoid getting blisters on a long walk?|Wear well-fitting shoes and thick socks.|Wear tight new shoes with no socks.
How do I keep a cut flower standing in a vase?|Trim the stem and put it in water.|Remove the stem and put it in sand.
How do I wash a wool sweater?|Hand wash it gently in cool water.|Boil it in a pot for an hour.
How do I make a clay pot hard?|Let it dry and then bake it in a kiln.|Keep it wet and store it in the fridge.
How do I stop a tablecloth from blowing off an outdoor table?|Clip it to the edges of the table.|Put a paper cup in the middle.
How can I make a long car trip less boring for kids?|Bring books, games and snacks.|Turn off the radio and ban talking.
How do I get sand off my feet after the beach?|Rinse them with water or brush them with a towel.|Rub them with more dry sand from the beach before putting on shoes.
How do I make a simple salad?|Chop lettuce and vegetables and toss them with dressing.|Boil lettuce for an hour and pour away the vegetables.
How do I keep a rug from sliding on a wood floor?|Put a non-slip pad under it.|Put a sheet of wax paper under it.
How can I make my handwriting smaller?|Write slowly with a fine pen.|Write quickly with a thick paint brush.
How can I find the right bus home?|Check the route number at the bus stop.|Get on the first bus you see and ride it to the last stop.
How do I keep my drink from getting watered down?|Use frozen fruit instead of ice cubes.|Add a cup of water every few minutes.
How do I stop my bike chain from squeaking?|Put a little bike oil on the chain.|Put a little honey on the chain.
How can I find a book quickly in a library?|Look it up in the catalog and go to its shelf number.|Start at the front door and read every single book on every shelf.
How do I hold a baby safely?|Support its head and neck with one hand.|Hold it upside down by one foot.
How can I keep a puzzle from getting messed up?|Build it on a board you can cover.|Build it on the floor near the door.
How do I make a pot of soup thicker?|Let it simmer uncovered for longer.|Add several cups of cold water.
"""


# ---------------------------------------------------------------------------
# HellaSwag-style: subject type (m / f / p) | topic | context | natural ending.
# Distractor endings are other items' endings with the same subject type (so
# pronouns and verb agreement fit) but a different topic, matched by length.
# ---------------------------------------------------------------------------
HELLASWAG = """
f|cook|A woman stands at the stove with a pan of sliced onions. She|stirs the onions with a wooden spoon until they turn soft and golden.
m|cook|A man cracks three eggs into a bowl on the kitchen counter. He|whisks the eggs with a fork and pours them into a hot buttered pan.
p|cook|Two friends are making a pot of soup for dinner. They|chop carrots and celery and drop the pieces into the simmering broth.
f|cook|A chef lays a raw steak on a wooden board and seasons it. She|places the steak in a sizzling pan and flips it after a few minutes.
m|cook|A man fills a large pot with water and sets it on the burner. He|waits for the water to boil, then adds a handful of dry spaghetti.
p|cook|A family gathers around the grill in the backyard. They|turn the burgers with a spatula and toast the buns on the edge of the grill.
f|cook|A girl is making a salad in a big glass bowl. She|tears the lettuce into pieces and tosses it with tomatoes and dressing.
m|cook|A cook peels a pile of potatoes over the sink. He|cuts them into cubes and drops them into a pot of salted water.
p|bake|A mother and her son are baking cookies in the kitchen. They|roll the dough into small balls and place them on a baking tray.
f|bake|A baker pours flour, sugar and eggs into a mixing bowl. She|beats the mixture until it is smooth and pours it into a cake pan.
m|bake|A man pulls a tray of bread rolls out of the hot oven. He|sets the tray on a rack and lets the golden rolls cool for a while.
f|bake|A woman spreads frosting over a round chocolate cake. She|smooths the sides with a knife and decorates the top with berries.
p|bake|The children watch the oven window as the muffins rise. They|take the muffins out when they are brown and let them cool on a plate.
m|bake|A boy kneads a ball of pizza dough on a floured counter. He|stretches the dough into a circle and spreads tomato sauce on top.
f|clean|A woman carries a bucket of soapy water into the hallway. She|dips the mop in the bucket and wipes the floor from one end to the other.
m|clean|A man notices dust on the bookshelves in the living room. He|takes a damp cloth and wipes each shelf until it is clean.
p|clean|A group of volunteers walks along the beach with trash bags. They|pick up plastic bottles and wrappers and put them in the bags.
f|clean|A girl looks at the pile of toys scattered on her bedroom floor. She|picks up the toys one by one and puts them back in the toy box.
m|clean|A janitor pushes a cart into the empty classroom after school. He|empties the trash cans and sweeps the floor between the desks.
p|clean|Two roommates decide the kitchen is too messy. They|wash the dirty dishes and wipe down the counters together.
f|clean|A woman sprays glass cleaner on the bathroom mirror. She|wipes the mirror with a paper towel until it is spotless.
m|laundry|A man carries a basket of dirty clothes to the washing machine. He|loads the clothes into the machine and adds a scoop of detergent.
f|laundry|A woman takes a load of wet towels out of the washer. She|hangs the towels on the clothesline in the backyard to dry.
p|laundry|Two sisters sit on the bed with a pile of clean laundry. They|fold the shirts into neat squares and stack them by color.
m|laundry|A young man sets up an ironing board next to his wrinkled shirt. He|plugs in the iron and presses the shirt until it is smooth.
f|laundry|A mother finds a stain on her son's white shirt. She|rubs some stain remover on the spot before putting it in the wash.
f|garden|A woman kneels in the garden with a small shovel. She|digs a hole, sets a young tomato plant in it, and pats down the soil.
m|garden|An old man pushes a lawn mower out of the shed. He|starts the engine and mows the grass in long straight rows.
p|garden|A family plants a small tree in their front yard. They|fill the hole with soil and give the tree plenty of water.
m|garden|A boy notices that the flowers in the pots look dry. He|fills a watering can at the tap and waters each pot.
f|garden|A gardener sees weeds growing between the carrots. She|pulls the weeds out by the roots and tosses them into a bucket.
p|garden|In autumn, the neighbors see leaves covering the lawn. They|rake the leaves into a big pile and stuff them into bags.
m|car|A man pulls into a gas station with the fuel light on. He|opens the tank cap and fills the car with gas from the pump.
f|car|A woman notices that one of her car tires looks flat. She|uses the jack to lift the car and replaces the tire with the spare.
p|car|Two teenagers wash their father's car in the driveway. They|scrub the doors with soapy sponges and rinse them with a hose.
m|car|A driver sits in the car and fastens his seat belt. He|starts the engine, checks the mirrors, and slowly pulls out of the driveway.
f|car|A woman stops at a red light in heavy traffic. She|waits for the light to turn green and then drives on.
m|bike|A boy pumps air into the tires of his bicycle. He|gets on the bike and rides down the street toward the park.
f|bike|A woman puts on her helmet next to her bicycle. She|buckles the strap under her chin and pedals off down the bike lane.
p|bike|A group of cyclists reaches the top of a steep hill. They|stop to catch their breath and drink from their water bottles.
m|bike|A man finds that his bike chain has come off. He|flips the bike over and hooks the chain back onto the gears.
f|swim|A girl stands at the edge of the swimming pool in her goggles. She|dives into the water and swims to the far end of the pool.
m|swim|A lifeguard sees a child struggling in the deep water. He|jumps into the pool and pulls the child safely to the edge.
p|swim|A group of kids runs down the beach toward the waves. They|splash into the shallow water and laugh as the waves hit them.
m|swim|A swimmer climbs out of the lake after a long swim. He|dries himself with a towel and sits on the dock in the sun.
f|swim|A woman is teaching her son to float in the pool. She|holds him under his back as he stretches out on the water.
m|soccer|A soccer player dribbles the ball toward the goal. He|kicks the ball hard into the corner of the net past the goalkeeper.
p|soccer|The two teams walk onto the soccer field before the match. They|shake hands with each other and take their positions for the kickoff.
f|soccer|A girl places the soccer ball on the penalty spot. She|takes a few steps back, runs up and shoots the ball into the net.
m|soccer|The goalkeeper sees the ball flying toward the top corner. He|leaps to his left and catches the ball with both hands.
m|basketball|A basketball player stands at the free throw line. He|bounces the ball twice, aims carefully, and shoots it through the hoop.
f|basketball|A woman dribbles the basketball down the court. She|drives past a defender and lays the ball up into the basket.
p|basketball|A group of friends meets at the outdoor basketball court. They|split into two teams and start a game of three on three.
m|tennis|A tennis player tosses the ball high above his head. He|swings his racket and serves the ball over the net.
f|tennis|A woman waits at the baseline as her opponent serves. She|returns the ball with a strong forehand down the line.
p|tennis|Two friends carry their rackets onto the tennis court. They|warm up by hitting the ball back and forth over the net.
m|gym|A man lies down on the weight bench at the gym. He|lifts the barbell from the rack and slowly presses it up and down.
f|gym|A woman steps onto the treadmill in her running shoes. She|presses the start button and begins jogging at a steady pace.
p|gym|The students line up on the mat in the school gym. They|take turns doing forward rolls across the mat.
f|gym|A yoga teacher rolls out a mat at the front of the class. She|sits down with crossed legs and asks everyone to breathe slowly.
m|gym|A man finishes his workout and is covered in sweat. He|wipes his face with a towel and drinks a bottle of water.
m|music|A man sits down at the piano and opens his music book. He|places his fingers on the keys and starts to play a slow song.
f|music|A girl tunes her violin before the concert. She|lifts the bow to the strings and plays the opening notes of the piece.
p|music|The band members walk onto the stage with their instruments. They|count off the beat and start playing their first song.
m|music|A boy picks up his guitar and sits on the edge of his bed. He|strums a few chords and sings along quietly.
f|music|A singer steps up to the microphone in front of the crowd. She|smiles at the audience and begins to sing the first verse.
p|music|The choir stands in rows on the steps of the church. They|watch the conductor and sing together in harmony.
f|art|An artist sets up an easel near the lake. She|squeezes paint onto her palette and begins painting the water and trees.
m|art|A boy sits at the table with a box of crayons and a sheet of paper. He|draws a house with a red roof and a big yellow sun above it.
p|art|The kids sit around a table covered with clay. They|shape the clay into small bowls and animals with their hands.
m|art|A man dips a brush into a can of blue paint. He|paints the fence with long even strokes from top to bottom.
f|art|A woman takes a photo of the sunset with her camera. She|checks the picture on the screen and takes another from a lower angle.
m|pets|A man picks up the leash and his dog runs to the door. He|clips the leash to the dog's collar and takes it out for a walk.
f|pets|A girl hears her cat meowing next to its empty bowl. She|opens a can of cat food and spoons it into the bowl.
p|pets|A family brings a new puppy home for the first time. They|show the puppy its bed and give it a small chew toy.
f|pets|A woman fills a bucket with warm water to wash her dog. She|lathers the dog with shampoo and rinses the soap out of its fur.
m|pets|A boy looks into the fish tank and sees the water is cloudy. He|scoops out some of the old water and pours in fresh clean water.
p|pets|Two children take turns throwing a ball in the park. They|laugh as their dog races across the grass to fetch it.
f|grooming|A woman stands in front of the bathroom mirror with a hairbrush. She|brushes her long hair and ties it back in a ponytail.
m|grooming|A man spreads shaving cream over his chin and cheeks. He|carefully shaves the stubble off with a razor and rinses his face.
m|grooming|A boy squeezes toothpaste onto his toothbrush. He|brushes his teeth for two minutes and rinses his mouth with water.
f|grooming|A hairdresser wraps a cape around her customer's shoulders. She|wets the customer's hair and trims the ends with scissors.
f|grooming|A girl finishes her shower and turns off the water. She|wraps herself in a towel and dries her hair with a hair dryer.
m|study|A student opens his math textbook at the kitchen table. He|works through the problems one by one and writes the answers in his notebook.
f|study|A teacher walks to the front of the classroom with a piece of chalk. She|writes the date on the board and tells the students to open their books.
p|study|The students sit quietly in the library before the exam. They|read over their notes and test each other with questions.
f|study|A girl gets a new library book about space. She|sits in a comfortable chair and reads the first chapter.
m|study|A boy raises his hand in the middle of the lesson. He|asks the teacher to explain the last example one more time.
p|shop|A couple pushes a cart through the grocery store. They|pick out apples, bread and milk and place them in the cart.
f|shop|A woman tries on a pair of shoes in the store. She|walks back and forth in front of the mirror to see how they fit.
m|shop|A man reaches the front of the checkout line. He|places his items on the belt and pays the cashier with his card.
f|shop|A girl looks at the prices of the fruit at the market. She|chooses a bag of oranges and hands the seller some coins.
m|office|A man sits down at his desk and turns on the computer. He|types in his password and opens his email to read new messages.
f|office|A woman prints a long report at the office. She|collects the pages from the printer and staples them together.
p|office|The team gathers in the meeting room with their laptops. They|look at the charts on the screen and discuss the plan for next month.
m|office|A man hears his phone ringing on the desk. He|picks up the phone and greets the caller politely.
m|snow|A boy looks out the window at the fresh snow in the yard. He|puts on his coat and boots and runs outside to build a snowman.
p|snow|A group of friends carries sleds to the top of a snowy hill. They|sit on the sleds and slide down the hill, shouting with joy.
m|snow|A man sees that snow has covered his driveway overnight. He|grabs a shovel and clears a path from the garage to the street.
f|snow|A girl clips her boots into a pair of skis at the top of the slope. She|pushes off with her poles and glides down the snowy slope.
p|camp|A family arrives at the campsite in the late afternoon. They|unpack the car and set up their tent under the tall pine trees.
m|camp|A scout gathers dry sticks around the campfire circle. He|stacks the sticks into a small pile and lights them with a match.
f|camp|A hiker reaches the top of the mountain trail. She|sits on a rock and looks out at the valley below while eating a snack.
p|camp|After dark, the campers sit around the fire. They|toast marshmallows on sticks and tell each other stories.
m|camp|A fisherman rows his small boat out to the middle of the lake. He|baits his hook with a worm and casts the line into the water.
f|craft|A woman threads a needle with red thread. She|sews the loose button back onto the front of the coat.
f|craft|A grandmother sits in her rocking chair with a ball of yarn. She|knits row after row of a warm scarf for her grandson.
p|craft|The children cut shapes out of colored paper. They|glue the shapes onto a card to make a birthday present for their mother.
m|craft|A carpenter measures a wooden board with a tape measure. He|marks a line with a pencil and cuts the board along it with a saw.
m|craft|A man wants to hang a new shelf on the wall. He|drills two holes, puts in the screws, and sets the shelf on its brackets.
p|dishes|After the big dinner, the family looks at the pile of dirty plates. They|fill the sink with hot soapy water and wash the dishes together.
m|dishes|A man opens the dishwasher after it finishes running. He|takes out the clean plates and puts them away in the cupboard.
f|dishes|A woman scrubs a burnt pot in the sink. She|rinses the pot, dries it with a towel, and hangs it on a hook.
m|morning|A man's alarm clock rings at six in the morning. He|turns off the alarm, stretches, and gets out of bed.
f|morning|A woman puts a slice of bread in the toaster. She|spreads butter and jam on the toast when it pops up.
p|morning|The children come downstairs for breakfast. They|sit at the table and eat bowls of cereal with milk.
m|morning|A man pours hot water over the coffee in his mug. He|stirs in a spoonful of sugar and sips the coffee slowly.
f|party|A girl is about to blow out the candles on her birthday cake. She|makes a wish and blows out all the candles in one breath.
p|party|The guests arrive at the surprise party and hide behind the sofa. They|jump out and shout surprise when the door opens.
m|party|A boy unwraps a birthday present from his grandparents. He|tears off the paper and smiles when he sees a new football.
f|party|A woman blows up balloons for her son's party. She|ties each balloon with a ribbon and tapes them to the wall.
m|rain|A man steps outside and feels the first drops of rain. He|opens his umbrella and walks quickly to the bus stop.
p|rain|The children play in the yard until it starts to pour. They|run inside the house and take off their wet shoes at the door.
f|rain|A woman sees dark clouds gathering over the beach. She|packs up her towel and umbrella and heads back to the car.
m|travel|A traveler arrives at the airport with his suitcase. He|checks in at the counter and walks toward the security line.
f|travel|A woman waits on the platform as the train pulls in. She|picks up her bag and steps onto the train when the doors open.
p|travel|A family arrives at their hotel after a long drive. They|check in at the front desk and carry their bags up to the room.
m|dance|A young man takes his partner's hand on the dance floor. He|leads her in a slow waltz as the music begins.
f|dance|A ballet dancer rises onto her toes in the middle of the stage. She|spins gracefully in a circle as the audience watches.
p|dance|A group of dancers stands in a line facing the mirror. They|follow the teacher's steps and move in time to the music.
f|phone|A woman's phone buzzes with a new text message. She|reads the message and types a quick reply to her friend.
m|phone|A man notices his phone battery is almost empty. He|plugs the phone into the charger next to his bed.
f|baby|A mother hears her baby crying in the crib. She|picks the baby up and rocks it gently until it stops crying.
m|baby|A father warms a bottle of milk for the baby. He|tests a drop on his wrist and then feeds the baby slowly.
p|baby|The parents put their baby in the stroller. They|tuck a blanket around the baby and go for a walk in the park.
m|run|A runner ties his shoes at the start of the race. He|waits for the starting signal and then sprints down the track.
f|run|A woman jogs along the river path early in the morning. She|slows down at the bridge and stretches her legs against the railing.
p|run|The runners cross the finish line one after another. They|catch their breath and accept bottles of water from the volunteers.
f|restaurant|A waitress brings a tray of drinks to a table. She|sets a glass in front of each customer and asks if they are ready to order.
m|restaurant|A man finishes his meal at a small restaurant. He|asks for the bill and leaves a tip on the table.
p|restaurant|A couple sits down at a table and looks at the menu. They|choose their meals and tell the waiter what they would like.
m|repair|A plumber kneels under the leaking kitchen sink. He|tightens the loose pipe with a wrench until the dripping stops.
f|repair|A woman sees that a light bulb in the hall has burned out. She|stands on a stool, unscrews the old bulb, and puts in a new one.
m|repair|A mechanic opens the hood of the car. He|checks the oil level with the dipstick and adds a little more oil.
f|doctor|A nurse wraps a cuff around the patient's arm. She|pumps the cuff and reads the patient's blood pressure.
m|doctor|A doctor holds a stethoscope against the boy's chest. He|listens to the boy's heartbeat and asks him to take a deep breath.
f|read|A woman curls up on the sofa with a new novel. She|opens the book and reads until she falls asleep.
m|read|An old man unfolds the morning newspaper at the table. He|reads the headlines and turns to the sports page.
m|farm|A farmer walks into the barn early in the morning. He|sits on a stool and milks the cow into a metal bucket.
f|farm|A girl carries a bowl of grain into the chicken coop. She|scatters the grain on the ground and collects the eggs from the nests.
p|farm|The farmers drive tractors across the wheat field. They|harvest the ripe wheat and load it into a big truck.
m|fish|A boy feels a tug on his fishing line. He|reels in the line slowly and lifts a small fish out of the water.
f|kite|A girl stands in the open field holding a kite. She|runs into the wind and lets out the string as the kite rises.
p|picnic|A family spreads a blanket on the grass in the park. They|unpack sandwiches and fruit from the basket and start to eat.
m|picnic|A man opens the picnic cooler on a hot afternoon. He|takes out a cold drink and hands it to his friend.
f|wrap|A woman lays a present on a sheet of wrapping paper. She|folds the paper around the box and tapes it closed.
m|wrap|A boy wants to mail a letter to his grandmother. He|folds the letter, puts it in an envelope, and sticks on a stamp.
p|move|Two movers lift a heavy sofa off the truck. They|carry it carefully up the steps and through the front door.
m|move|A man finishes packing his books into boxes. He|tapes each box shut and writes the word books on the side.
f|move|A woman unpacks the boxes in her new kitchen. She|puts the plates in the cupboard and the forks in the drawer.
m|bed|A father tucks his daughter into bed. He|reads her a short story and turns off the light.
f|bed|A girl yawns and puts on her pajamas. She|brushes her teeth and climbs into bed.
p|bed|The campers crawl into the tent after a long day. They|zip up their sleeping bags and soon fall asleep.
m|guitar|A street musician opens his guitar case on the sidewalk. He|starts playing a cheerful tune as people drop coins into the case.
f|skate|A girl laces up her ice skates at the side of the rink. She|steps onto the ice and glides slowly around the edge.
m|skate|A teenager sets his skateboard down at the top of the ramp. He|pushes off and rolls down the ramp, bending his knees.
p|boat|Two friends push a canoe into the calm lake. They|climb in carefully and paddle toward the small island.
m|golf|A golfer places the ball on a tee. He|swings his club and sends the ball far down the fairway.
f|bowl|A woman picks up a heavy bowling ball. She|rolls it down the lane and knocks over all ten pins.
p|volley|The teams face each other across the beach volleyball net. They|hit the ball back and forth until it lands in the sand.
m|climb|A climber clips his rope into the anchor on the rock wall. He|reaches for the next hold and pulls himself higher up the wall.
f|horse|A girl leads her horse out of the stable. She|puts on the saddle, climbs up, and rides slowly around the field.
m|chess|A boy studies the chessboard for a long time. He|moves his knight forward and says check to his opponent.
f|chess|A woman looks at the pieces on the chessboard. She|slides her queen across the board and captures a rook.
p|cards|The friends sit around the table with a deck of cards. They|shuffle the cards, deal them out, and start to play.
m|trash|A man notices the kitchen trash can is full. He|ties up the bag and carries it out to the bin by the street.
f|trash|A woman rinses an empty glass jar. She|puts the jar in the recycling bin with the other bottles.
f|makeup|An actress sits in front of a mirror before the show. She|puts on her makeup and checks her costume one last time.
m|sick|A boy wakes up with a sore throat and a fever. He|stays home from school and rests in bed with a cup of tea.
f|sick|A woman sneezes several times while working at her desk. She|takes a tissue from the box and blows her nose.
p|vote|People line up outside the school on election day. They|enter the booth one at a time and mark their ballots.
m|news|A news reporter stands in front of the camera with a microphone. He|looks into the lens and describes the storm that hit the town.
f|zoo|A zookeeper carries a bucket of fish to the penguin pool. She|tosses the fish one by one to the hungry penguins.
p|zoo|A class of children visits the monkey house at the zoo. They|press their faces to the glass and watch the monkeys swing.
m|window|A man climbs a ladder with a bucket and a squeegee. He|washes the upstairs windows and wipes them dry.
f|plant|A woman notices her houseplant has grown too big for its pot. She|moves the plant into a larger pot and adds fresh soil.
m|bbq|A man lights the charcoal in the grill. He|waits for the coals to glow and then lays the sausages on the grate.
f|tea|A woman fills the kettle and switches it on. She|pours the boiling water over a tea bag in her cup.
p|build|The workers pour concrete for the foundation of a house. They|spread the concrete evenly and smooth the top with long tools.
m|bricks|A builder spreads mortar on the wall. He|lays a brick on the mortar and taps it level with his trowel.
f|hair|A mother combs the tangles out of her daughter's wet hair. She|braids the hair into two neat plaits and ties them with ribbons.
m|gift|A man reads a thank-you card from his friend. He|smiles and puts the card on the shelf above the fireplace.
f|pack|A woman lays her clothes on the bed before a trip. She|folds them neatly and packs them into her suitcase.
p|concert|The crowd waits in front of the stage for the concert to begin. They|cheer loudly as the lights come on and the band appears.
m|paint|A painter covers the furniture with old sheets. He|rolls white paint onto the walls of the empty room.
f|letter|A girl finishes writing a letter to her pen pal. She|signs her name at the bottom and folds the letter into an envelope.
p|race|The swimmers stand on the blocks at the edge of the pool. They|dive in at the sound of the whistle and race toward the wall.
m|jump|A long jumper sprints down the runway. He|leaps off the board and lands far out in the sand pit.
f|photo|A photographer asks the family to stand closer together. She|counts to three and snaps the picture.
m|cut|A barber picks up his electric clippers. He|trims the hair on the sides of the man's head very short.
p|tree|The family drags a pine tree into the living room. They|stand it up in the corner and hang lights and ornaments on it.
f|ice|A woman takes a tray of ice cubes from the freezer. She|twists the tray and drops the ice cubes into a tall glass.
m|lamp|A man walks into the dark room. He|flips the switch on the wall and the light comes on.
f|umbrella|A woman walks in from the rain with a dripping umbrella. She|shakes off the water and leaves the umbrella open to dry.
p|game|The players huddle together on the football field. They|listen to the quarterback call the next play and clap their hands.
"""


# ---------------------------------------------------------------------------
# Instructions, hand-written: instruction | input (may be empty) | output.
# A literal backslash-n inside a field becomes a line break.
# ---------------------------------------------------------------------------
INSTR_HAND = r"""
Explain why the sky looks blue on a clear day.||Sunlight contains all the colors of light. When it passes through the air, the short blue wavelengths are scattered in every direction much more than the longer red ones, so blue light reaches our eyes from all parts of the sky.
What is photosynthesis?||Photosynthesis is the process green plants use to make their own food. Using energy from sunlight, they turn water and carbon dioxide into sugar and release oxygen into the air.
Name the three primary colors used in traditional painting.||The three traditional primary colors in painting are red, yellow and blue.
Give three tips for staying healthy.||1. Eat plenty of fruit and vegetables.\n2. Exercise for at least thirty minutes on most days.\n3. Get seven to nine hours of sleep every night.
What is the difference between weather and climate?||Weather is the state of the air at a particular place and time, such as a rainy afternoon. Climate is the typical pattern of weather in a region measured over many years.
Why does Earth have seasons?||Earth's axis is tilted by about 23.5 degrees. As Earth orbits the Sun, each hemisphere is tilted toward the Sun for part of the year, getting more direct sunlight and longer days in summer, and tilted away in winter.
List the planets of the solar system in order from the Sun.||Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune.
How many continents are there, and what are they?||There are seven continents: Africa, Antarctica, Asia, Australia (Oceania), Europe, North America and South America.
Who wrote the play "Romeo and Juliet"?||"Romeo and Juliet" was written by William Shakespeare.
Who painted the Mona Lisa?||The Mona Lisa was painted by the Italian artist Leonardo da Vinci.
What is the largest animal that has ever lived?||The blue whale is the largest animal known to have ever lived. It can grow to about 30 meters long.
What is the chemical symbol for gold?||The chemical symbol for gold is Au, from the Latin word "aurum".
What are the three common states of matter?||The three common states of matter are solid, liquid and gas. Water, for example, can be ice, liquid water or steam.
What is the tallest mountain in the world?||Mount Everest, on the border between Nepal and China, is the tallest mountain above sea level at about 8,849 meters.
How many sides does a hexagon have?||A hexagon has six sides.
What is a prime number? Give a few examples.||A prime number is a whole number greater than 1 that can only be divided evenly by 1 and itself. Examples are 2, 3, 5, 7, 11 and 13.
Briefly explain the water cycle.||Water evaporates from oceans, lakes and rivers and rises into the air as vapor. The vapor cools and condenses into clouds, then falls back to the ground as rain or snow, and flows back into rivers and seas.
What causes a rainbow?||A rainbow forms when sunlight enters raindrops, bends, reflects off the back of the drops and bends again as it leaves. This splits white light into its colors, which we see as an arc in the sky.
Why do people need sleep?||Sleep lets the body repair itself and helps the brain store memories and process what we learned during the day. Without enough sleep, people find it harder to concentrate and are more likely to get sick.
List three ways to save energy at home.||1. Turn off lights and devices when you leave a room.\n2. Use energy-efficient LED bulbs.\n3. Wash clothes in cold water and dry them on a line when possible.
What does a computer's CPU do?||The CPU, or central processing unit, is the part of a computer that carries out instructions. It performs calculations and controls the other parts of the computer, so it is often called the computer's brain.
What is recycling?||Recycling is the process of collecting used materials such as paper, glass, metal and plastic and turning them into new products. It saves raw materials and energy and reduces the amount of waste sent to landfills.
Name two mammals that live in the sea.||Whales and dolphins are mammals that live in the sea. They breathe air with lungs and feed their young with milk.
What is the main job of the heart?||The heart is a muscle that pumps blood around the body. The blood carries oxygen and nutrients to the cells and takes away waste.
How do bees help flowers?||As bees collect nectar, pollen sticks to their bodies and is carried from flower to flower. This pollination allows the plants to make seeds and fruit.
What is a fraction?||A fraction represents a part of a whole. It is written as one number over another, such as 3/4, where the bottom number shows how many equal parts the whole is divided into and the top number shows how many parts are taken.
What is the difference between bacteria and viruses?||Bacteria are tiny single-celled organisms that can live and reproduce on their own. Viruses are much smaller and can only reproduce inside the cells of another living thing. Antibiotics can treat bacterial infections but do not work against viruses.
Write a polite message declining an invitation to a dinner party.||Thank you so much for inviting me to your dinner party. Unfortunately I already have plans that evening, so I won't be able to come. I hope you all have a wonderful time, and I would love to get together another day.
Write a short thank-you note to a teacher.||Dear Ms. Green, thank you for your patience and encouragement this year. Your lessons made me enjoy learning, and I am grateful for all the help you gave me.
Suggest three activities for a rainy day at home.||1. Build a blanket fort and read books inside it.\n2. Bake cookies or muffins together.\n3. Play a board game or do a jigsaw puzzle.
Give step-by-step instructions for making a cup of tea.||1. Boil fresh water in a kettle.\n2. Put a tea bag in a cup.\n3. Pour the hot water over the tea bag.\n4. Let it steep for three to five minutes, then remove the bag.\n5. Add milk, sugar or lemon if you like.
How should you wash your hands properly?||Wet your hands with clean water and apply soap. Rub your palms, the backs of your hands, between your fingers and under your nails for at least twenty seconds. Rinse well and dry your hands with a clean towel.
What is a haiku?||A haiku is a short Japanese form of poetry with three lines. The lines traditionally have five, seven and five syllables, and the poem often describes nature or a season.
Write a haiku about autumn.||Crisp leaves drift and fall\ngolden light on quiet paths\nthe year breathes slowly
Explain the difference between "their", "there" and "they're".||"Their" shows that something belongs to a group of people, as in "their house". "There" refers to a place, as in "over there". "They're" is a short form of "they are", as in "they're late".
What is an adjective?||An adjective is a word that describes a noun. In the phrase "a tall green tree", the words "tall" and "green" are adjectives.
What is a verb?||A verb is a word that describes an action or a state of being. In "She runs every morning", the verb is "runs", and in "He is tired", the verb is "is".
What is a noun? Give examples.||A noun is a word that names a person, place, thing or idea. Examples include "teacher", "London", "chair" and "happiness".
What does the idiom "break the ice" mean?||To "break the ice" means to say or do something that makes people feel more relaxed when they first meet, such as telling a joke or asking a friendly question.
What does the phrase "a piece of cake" mean?||"A piece of cake" means that something is very easy to do. For example, "The test was a piece of cake."
What does "once in a blue moon" mean?||"Once in a blue moon" means very rarely. For example, "My cousin visits us once in a blue moon."
In what year did humans first land on the Moon?||Humans first landed on the Moon in 1969, when the Apollo 11 astronauts Neil Armstrong and Buzz Aldrin stepped onto its surface.
Which country has the largest land area?||Russia is the largest country by land area, covering about 17 million square kilometers.
Which language has the most native speakers?||Mandarin Chinese has the most native speakers in the world. English has the most speakers overall when people who learned it as a second language are included.
How many bones are in the adult human body?||An adult human body usually has 206 bones.
What is DNA?||DNA is the molecule that carries the genetic instructions of living things. It is shaped like a twisted ladder, called a double helix, and is passed from parents to their children.
Why is regular exercise important?||Regular exercise strengthens the heart, muscles and bones, helps control body weight and improves mood and sleep. It also lowers the risk of many diseases.
What does inflation mean in economics?||Inflation is the general rise in prices over time. When inflation is high, the same amount of money buys fewer goods and services than before.
What is a budget and why is it useful?||A budget is a plan for how you will spend and save your money. It helps you make sure you do not spend more than you earn and that you can save for future goals.
Give three tips for studying for an exam.||1. Start reviewing early instead of cramming the night before.\n2. Test yourself with practice questions.\n3. Take short breaks and get enough sleep.
State the Pythagorean theorem.||In a right triangle, the square of the length of the longest side (the hypotenuse) equals the sum of the squares of the other two sides: a² + b² = c².
What is the formula for the area of a circle?||The area of a circle is A = πr², where r is the radius. For example, a circle with a radius of 2 cm has an area of about 12.57 square centimeters.
What is an atom?||An atom is the smallest unit of a chemical element. It has a tiny nucleus made of protons and neutrons, surrounded by electrons.
Why does ice float on water?||When water freezes, its molecules arrange themselves in an open pattern that takes up more space than liquid water. This makes ice less dense than water, so it floats.
What is an ecosystem?||An ecosystem is a community of living things, such as plants, animals and microbes, together with their physical surroundings like water, soil and air, all interacting with each other.
Name one instrument from each of three sections of an orchestra.||The violin is a string instrument, the flute is a woodwind instrument and the trumpet is a brass instrument.
What is a synonym?||A synonym is a word that has the same or nearly the same meaning as another word. For example, "big" and "large" are synonyms.
Write a sentence using the word "curious".||The curious kitten sniffed every corner of its new home.
Create a short slogan for a recycling campaign.||Give it another life: recycle today!
What should you do if you discover a fire in a building?||Warn the people around you, leave the building quickly by the nearest safe exit and do not use the elevator. Once you are outside, call the emergency number.
Why should you wear a seat belt in a car?||A seat belt holds you in place if the car stops suddenly or crashes. It greatly reduces the chance of serious injury because it keeps you from hitting the inside of the car or being thrown out.
How many days are there in a leap year?||A leap year has 366 days, one more than a common year, because February has 29 days instead of 28.
What is biodiversity?||Biodiversity is the variety of all living things in a place, including different species of plants, animals and microorganisms. High biodiversity helps ecosystems stay healthy and stable.
What is an earthquake?||An earthquake is a sudden shaking of the ground. It happens when large pieces of Earth's crust, called tectonic plates, suddenly slip past each other and release energy.
Describe the taste of a lemon.||A lemon tastes very sour and slightly bitter, with a fresh and sharp citrus flavor.
Explain how to find the average of a set of numbers.||Add all the numbers together and divide the total by how many numbers there are. For example, the average of 2, 4 and 9 is (2 + 4 + 9) / 3 = 5.
Write an opening sentence for a story about a lost key.||When Nora found the tiny silver key under the floorboards, she had no idea which door it would open.
Describe a cat in three sentences.||A cat is a small furry animal with sharp claws, pointed ears and long whiskers. It moves quietly and gracefully and loves to nap in warm, sunny spots. Many cats are playful and curious but also like to be independent.
Name four kinds of weather.||Sunny, rainy, snowy and windy.
What is a dictionary used for?||A dictionary is used to look up the meaning, spelling and pronunciation of words. Many dictionaries also show examples of how a word is used.
Why do plants need water?||Plants use water to make food through photosynthesis and to carry nutrients from the soil up to their leaves. Water also keeps their cells firm so the plant can stand upright.
What are vitamins?||Vitamins are nutrients that the body needs in small amounts to work properly. For example, vitamin C helps the immune system and vitamin D helps build strong bones.
Suggest a healthy breakfast.||A bowl of oatmeal topped with sliced banana and a handful of nuts, served with a glass of milk, is a healthy and filling breakfast.
How can I fall asleep more easily?||Go to bed at the same time every night and keep your bedroom dark, quiet and cool. Avoid screens and caffeine in the hour before bed.
What is a metaphor? Give an example.||A metaphor describes something by saying it is something else, without using "like" or "as". For example, "The classroom was a zoo" means the classroom was loud and chaotic.
What is a simile? Give an example.||A simile compares two things using the words "like" or "as". For example, "She was as brave as a lion."
Explain the difference between "affect" and "effect".||"Affect" is usually a verb meaning to influence something, as in "The rain affected the game." "Effect" is usually a noun meaning a result, as in "The rain had a big effect on the game."
When should you use "a" and when should you use "an"?||Use "a" before words that begin with a consonant sound, such as "a dog" or "a university". Use "an" before words that begin with a vowel sound, such as "an apple" or "an hour".
Tell me a fun fact about octopuses.||An octopus has three hearts and blue blood. Two hearts pump blood through the gills and the third pumps it to the rest of the body.
Give three tips for creating a strong password.||1. Use at least twelve characters.\n2. Mix uppercase and lowercase letters, numbers and symbols.\n3. Do not use personal information such as your name or birthday.
Who was the first person to walk on the Moon?||Neil Armstrong was the first person to walk on the Moon, on July 20, 1969.
What is the smallest prime number?||The smallest prime number is 2. It is also the only even prime number.
Is a tomato a fruit or a vegetable?||Botanically, a tomato is a fruit because it develops from a flower and contains seeds. In cooking, however, it is usually treated as a vegetable.
Name the four seasons of the year.||The four seasons are spring, summer, autumn (also called fall) and winter.
What is the main ingredient of guacamole?||The main ingredient of guacamole is avocado, which is mashed and usually mixed with lime juice, onion, salt and chili.
What language is mainly spoken in Brazil?||The main language of Brazil is Portuguese.
Which ocean lies between Europe and North America?||The Atlantic Ocean lies between Europe and North America.
What does a carpenter do?||A carpenter builds and repairs things made of wood, such as furniture, doors, floors and the frames of houses.
What is the boiling point of water at sea level?||At sea level, water boils at 100 degrees Celsius, which is 212 degrees Fahrenheit.
What is the largest hot desert in the world?||The Sahara in northern Africa is the largest hot desert in the world. If cold deserts are included, Antarctica is the largest desert overall.
What is gravity?||Gravity is the force that pulls objects toward each other. On Earth, it pulls things toward the ground and gives them weight, and it also keeps the Moon in orbit around Earth.
What is electricity?||Electricity is a form of energy caused by the movement of tiny charged particles called electrons. It flows through wires to power lights, machines and electronic devices.
What is a volcano?||A volcano is an opening in Earth's crust through which melted rock, called magma, along with gases and ash, escapes from deep underground. When the magma reaches the surface it is called lava.
Why do we brush our teeth?||Brushing removes food and plaque, a sticky layer of bacteria, from our teeth. This helps prevent cavities, gum disease and bad breath.
What is the purpose of a compass?||A compass shows directions. Its magnetic needle points toward magnetic north, which helps people find their way.
Give a short definition of the word "habitat".||A habitat is the natural home of an animal or plant, where it finds the food, water and shelter it needs to survive.
Explain what a paragraph is.||A paragraph is a group of sentences about one main idea. It usually begins on a new line, and its first sentence often introduces the topic.
What is the difference between a city and a village?||A city is a large, densely populated place with many buildings and services, while a village is a small community, usually in the countryside, with far fewer people.
Why is it important to drink water?||Water keeps the body hydrated, helps control body temperature, carries nutrients to cells and helps remove waste. Even mild dehydration can cause tiredness and headaches.
Give two examples of renewable energy sources.||Solar power and wind power are renewable energy sources, because sunlight and wind will not run out as we use them.
What is a mammal?||A mammal is a warm-blooded animal with a backbone that has hair or fur and feeds its young with milk. Dogs, humans and whales are mammals.
Write a short motivational sentence for someone learning a new skill.||Every expert was once a beginner, so keep practicing and be proud of each small step forward.
What is the capital city of the United States?||The capital of the United States is Washington, D.C.
Name three countries in South America.||Brazil, Argentina and Colombia are three countries in South America.
Explain what a calendar month is.||A calendar month is one of the twelve parts into which a year is divided, such as January or February. Most months have 30 or 31 days, and February has 28 days, or 29 in a leap year.
What are the colors of a rainbow in order?||The colors of a rainbow, from outside to inside, are red, orange, yellow, green, blue, indigo and violet.
Describe how a seed grows into a plant.||When a seed gets water, warmth and air, it swells and splits open. A root grows down into the soil, and a shoot grows up toward the light, where it forms leaves and starts making food.
Suggest a name for a small neighborhood bakery.||"The Warm Crust Bakery" would be a friendly name for a small neighborhood bakery.
Summarize the following text in one sentence.|Honeybees live in large colonies ruled by a single queen. Worker bees collect nectar and pollen, build the wax comb and care for the young, while male drones mainly mate with the queen. In winter, the bees cluster together to keep warm.|Honeybee colonies have one queen, worker bees that do most of the jobs and drones that mate with the queen, and the bees huddle together to survive winter.
Summarize the following text in one sentence.|The city council met on Tuesday to discuss the new bike lanes on Main Street. Some shop owners worried about losing parking spaces, but most residents who spoke supported the plan. The council will vote on the proposal next month.|The city council discussed a plan for bike lanes on Main Street, which most residents support despite shop owners' parking concerns, and will vote next month.
Summarize the following text in one sentence.|Mia had practiced the piano piece for weeks, but on the night of the recital her hands were shaking. She took a deep breath, looked at her parents in the front row and began to play. When she finished, the audience stood up and clapped.|Despite her nerves, Mia played her piano piece at the recital and received a standing ovation.
Summarize the following text in one sentence.|Drinking enough water is important for health. Water helps control body temperature, protects the joints and carries nutrients around the body. Most adults should drink several glasses a day, and more in hot weather or during exercise.|Water is essential for health, so adults should drink several glasses a day and more when it is hot or they exercise.
Summarize the following text in one sentence.|The old lighthouse on the hill was built in 1870 to guide ships past the rocky coast. It stopped working in the 1960s when modern navigation systems were installed. Today it has been restored and is a small museum that is open to visitors in the summer.|The 1870 lighthouse that once guided ships has been restored and now serves as a summer museum.
Summarize the following text in one sentence.|Our school's science fair will take place on May 12 in the gym. Every student in grades five to eight can enter a project, either alone or in pairs. Projects must be registered with a teacher by April 30.|Students in grades five to eight can enter projects, alone or in pairs, in the May 12 science fair if they register by April 30.
Summarize the following text in one sentence.|Tom wanted to adopt a dog, so he visited the local animal shelter. He met a shy brown dog named Biscuit who slowly wagged her tail when he knelt down. After filling out the forms, Tom brought Biscuit home the next weekend.|Tom visited an animal shelter and adopted a shy dog named Biscuit.
Summarize the following text in one sentence.|Many people think that goldfish have a memory of only three seconds. In fact, experiments show that goldfish can remember things for months. They can even be trained to respond to sounds or colors when it is time to eat.|Contrary to the popular myth, goldfish can remember things for months and can even be trained.
Classify the sentiment of the following review as positive, negative or neutral.|The pizza arrived hot and the crust was perfectly crispy. I will definitely order again!|Positive
Classify the sentiment of the following review as positive, negative or neutral.|The hotel room was dirty and the staff ignored our complaints.|Negative
Classify the sentiment of the following review as positive, negative or neutral.|The package arrived on Tuesday, as the website said it would.|Neutral
Classify the sentiment of the following review as positive, negative or neutral.|This is the most comfortable pair of shoes I have ever owned.|Positive
Classify the sentiment of the following review as positive, negative or neutral.|The movie was far too long and the ending made no sense.|Negative
Classify the sentiment of the following review as positive, negative or neutral.|The museum is open from nine to five and entry costs ten dollars.|Neutral
Classify the sentiment of the following review as positive, negative or neutral.|The battery died after two days and customer support never replied.|Negative
Classify the sentiment of the following review as positive, negative or neutral.|What a lovely little café: friendly staff, great coffee and fresh pastries.|Positive
Is the following sentence a statement, a question, a command or an exclamation?|Please close the window before you leave.|It is a command, because it tells someone to do something.
Is the following sentence a statement, a question, a command or an exclamation?|Where did you put the car keys?|It is a question, because it asks for information and ends with a question mark.
Is the following sentence a statement, a question, a command or an exclamation?|The library closes at eight o'clock.|It is a statement, because it simply gives information.
Is the following sentence a statement, a question, a command or an exclamation?|What a beautiful view this is!|It is an exclamation, because it expresses strong feeling and ends with an exclamation mark.
Correct the grammar in the following sentence.|She don't like apples.|She doesn't like apples.
Correct the grammar in the following sentence.|Me and him went to the store yesterday.|He and I went to the store yesterday.
Correct the grammar in the following sentence.|There is many books on the shelf.|There are many books on the shelf.
Correct the grammar in the following sentence.|I have went to Paris twice.|I have gone to Paris twice.
Correct the grammar in the following sentence.|The childrens are playing in the garden.|The children are playing in the garden.
Correct the grammar in the following sentence.|He runned to the bus stop.|He ran to the bus stop.
Correct the grammar in the following sentence.|Their going to the beach tomorrow.|They're going to the beach tomorrow.
Correct the grammar in the following sentence.|She is more taller than her brother.|She is taller than her brother.
Correct the grammar in the following sentence.|Everyone have finished their homework.|Everyone has finished their homework.
Correct the grammar in the following sentence.|I seen that movie last week.|I saw that movie last week.
Correct the spelling mistakes in the following sentence.|I recieved a beautifull present for my birthday.|I received a beautiful present for my birthday.
Correct the spelling mistakes in the following sentence.|We definately need to buy more bred.|We definitely need to buy more bread.
Rewrite the following sentence in a more formal tone.|Hey, can you send me that report asap?|Could you please send me the report at your earliest convenience?
Rewrite the following sentence in a more formal tone.|The boss is super mad about the delay.|The manager is very displeased about the delay.
Rewrite the following sentence in a more formal tone.|We gotta fix this bug before the launch.|We need to fix this bug before the launch.
Rewrite the following sentence in the passive voice.|The chef cooked a delicious meal.|A delicious meal was cooked by the chef.
Rewrite the following sentence in the passive voice.|The students planted three trees.|Three trees were planted by the students.
Rewrite the following sentence in the passive voice.|The storm damaged the old barn.|The old barn was damaged by the storm.
Rewrite the following sentence in the past tense.|She walks to school every day.|She walked to school every day.
Rewrite the following sentence in the past tense.|They eat lunch in the park.|They ate lunch in the park.
Rewrite the following sentence in the past tense.|I write a letter to my grandmother.|I wrote a letter to my grandmother.
Combine the two sentences into one sentence.|The sun was shining. We went to the beach.|The sun was shining, so we went to the beach.
Combine the two sentences into one sentence.|Sara likes tea. Her brother prefers coffee.|Sara likes tea, but her brother prefers coffee.
Combine the two sentences into one sentence.|I was tired. I finished my homework.|Although I was tired, I finished my homework.
Turn the following statement into a question.|The train leaves at six o'clock.|Does the train leave at six o'clock?
Turn the following statement into a question.|You have finished the book.|Have you finished the book?
Classify each animal as a mammal, bird, fish or reptile.|eagle, salmon, horse, lizard|Eagle: bird\nSalmon: fish\nHorse: mammal\nLizard: reptile
Classify each animal as a mammal, bird, fish or reptile.|crocodile, dolphin, parrot, tuna|Crocodile: reptile\nDolphin: mammal\nParrot: bird\nTuna: fish
Classify each item as a fruit or a vegetable.|banana, carrot, strawberry, broccoli, pear|Banana: fruit\nCarrot: vegetable\nStrawberry: fruit\nBroccoli: vegetable\nPear: fruit
Find the word that does not belong in the group and explain why.|apple, banana, hammer, grape|"Hammer" does not belong, because it is a tool and the others are fruits.
Find the word that does not belong in the group and explain why.|red, blue, green, table|"Table" does not belong, because it is a piece of furniture and the others are colors.
Find the word that does not belong in the group and explain why.|dog, cat, rabbit, car|"Car" does not belong, because it is a vehicle and the others are animals.
Find the word that does not belong in the group and explain why.|Monday, Friday, April, Sunday|"April" does not belong, because it is a month and the others are days of the week.
Extract all the city names from the following text.|Last summer we flew from London to Rome, then took a train to Florence before ending our trip in Madrid.|London, Rome, Florence, Madrid
Extract all the numbers from the following sentence.|The recipe needs 2 eggs, 250 grams of flour and 3 spoons of sugar.|2, 250, 3
Suggest a title for the following paragraph.|Every spring, thousands of birds fly north from their winter homes. They travel long distances using the sun, the stars and Earth's magnetic field to find their way, and many return to the very same nesting spots each year.|The Amazing Journeys of Migrating Birds
Suggest a title for the following paragraph.|Regular reading can improve vocabulary, focus and imagination. Experts suggest reading for at least twenty minutes a day, whether it is a novel, a newspaper or a comic book.|Why Twenty Minutes of Reading a Day Matters
Answer the question based on the text.\nQuestion: What color is Emma's bicycle?|Emma rode her new red bicycle to the park, where she met her friend Jack, who had a blue scooter.|Emma's bicycle is red.
Answer the question based on the text.\nQuestion: How long did the concert last?|The concert started at seven in the evening and ended at half past nine.|The concert lasted two and a half hours.
Answer the question based on the text.\nQuestion: Why was the picnic cancelled?|The class had planned a picnic by the lake on Friday, but heavy rain flooded the park, so the teacher called it off.|The picnic was cancelled because heavy rain flooded the park.
Answer the question based on the text.\nQuestion: How many pets does Leo have?|Leo has two cats named Pepper and Salt, and last month he also adopted a small dog.|Leo has three pets: two cats and a dog.
Answer the question based on the text.\nQuestion: Where does the Amazon River end?|The Amazon River begins in the Andes mountains of Peru and flows east across Brazil until it empties into the Atlantic Ocean.|The Amazon River ends in the Atlantic Ocean.
Answer the question based on the text.\nQuestion: What does the shop sell?|Located on the corner of Oak Street, Green Leaf sells fresh fruit, vegetables and flowers grown on local farms.|The shop sells fresh fruit, vegetables and flowers from local farms.
Classify the topic of the following headline as sports, politics, science, business or entertainment.|Local team wins championship after dramatic penalty shootout|Sports
Classify the topic of the following headline as sports, politics, science, business or entertainment.|Scientists discover a new species of frog in the rainforest|Science
Classify the topic of the following headline as sports, politics, science, business or entertainment.|Parliament passes new law on school funding|Politics
Classify the topic of the following headline as sports, politics, science, business or entertainment.|Popular singer announces world tour for next year|Entertainment
Classify the topic of the following headline as sports, politics, science, business or entertainment.|Company profits rise as online sales double|Business
Decide whether the following message is spam or not spam.|Congratulations! You have won a free cruise. Click this link now to claim your prize.|Spam. It promises an unexpected prize and pushes you to click a link, which are common signs of spam.
Decide whether the following message is spam or not spam.|Hi Anna, the meeting has moved to 3 pm in room 12. See you there.|Not spam. It is a normal message about a change in meeting time.
Decide whether the following message is spam or not spam.|URGENT: your account will be closed today unless you send your password to this address.|Spam. Real companies never ask you to send your password by email.
Simplify the following sentence.|Due to the fact that it was raining, we made the decision to remain indoors.|Because it was raining, we decided to stay inside.
Simplify the following sentence.|In the event that you require assistance, please do not hesitate to contact us.|If you need help, please contact us.
Write the following list as a single sentence.|eggs, milk, bread, butter|I need to buy eggs, milk, bread and butter.
Identify the verb in the following sentence.|The dog barked at the mail carrier.|The verb is "barked".
Identify the nouns in the following sentence.|The girl put the book on the table.|The nouns are "girl", "book" and "table".
Identify the adjectives in the following sentence.|The tiny kitten slept on a soft, warm blanket.|The adjectives are "tiny", "soft" and "warm".
Explain the meaning of the idiom used in the following sentence.|After the long hike, I was so tired that I hit the sack at eight o'clock.|"Hit the sack" means to go to bed.
Give the main idea of the following paragraph.|Trees are important for cities. They provide shade on hot days, clean the air, reduce noise and give birds a place to live. They also make streets more pleasant to walk along.|Trees bring many benefits to cities, from cleaner air and shade to homes for wildlife.
Put the following steps for planting a seed in the correct order.|water the soil, dig a small hole, cover the seed with soil, place the seed in the hole|1. Dig a small hole.\n2. Place the seed in the hole.\n3. Cover the seed with soil.\n4. Water the soil.
Put the following events in chronological order.|eat lunch, wake up, go to bed, eat breakfast|1. Wake up.\n2. Eat breakfast.\n3. Eat lunch.\n4. Go to bed.
Write a short product description for the following item.|a stainless steel water bottle that keeps drinks cold for 24 hours|Stay refreshed all day with this stainless steel water bottle. Its insulated walls keep your drinks cold for up to 24 hours, and its sturdy design is perfect for work, school or the gym.
Write a short, friendly reply to the following message.|Thanks for helping me move the boxes yesterday!|You're very welcome! I was happy to help, and I hope you enjoy your new place.
Translate the following sentence into French.|I like cats.|J'aime les chats.
Translate the following sentence into Spanish.|Where is the library?|¿Dónde está la biblioteca?
Translate the following sentence into German.|Good night.|Gute Nacht.
Explain what the following proverb means.|Don't count your chickens before they hatch.|It means you should not rely on a good result before it has actually happened.
Explain what the following proverb means.|Actions speak louder than words.|It means that what people do shows their true intentions better than what they say.
Convert the following sentence into reported speech.|Tom said, "I am hungry."|Tom said that he was hungry.
"""


# ---------------------------------------------------------------------------
# Instructions, template-generated (answers are computed, never typed in).
# ---------------------------------------------------------------------------
NAMES = [("Maria", "she"), ("Tom", "he"), ("Aisha", "she"), ("Leo", "he"), ("Priya", "she"),
         ("Omar", "he"), ("Sofia", "she"), ("Ben", "he"), ("Yuki", "she"), ("Carlos", "he")]
ITEMS = ["apples", "stickers", "marbles", "pencils", "books", "cookies", "stamps", "shells"]


def _rec(instruction: str, inp: str, output: str) -> dict:
    return {"instruction": instruction, "input": inp, "output": output}


def gen_arithmetic(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        name, pron = rng.choice(NAMES)
        item = rng.choice(ITEMS)
        kind = i % 6
        if kind == 0:
            a, b = rng.randint(5, 60), rng.randint(3, 40)
            q = f"{name} has {a} {item}. {pron.capitalize()} gets {b} more. How many {item} does {name} have now?"
            ans = f"{name} has {a} + {b} = {a + b} {item} now."
        elif kind == 1:
            a = rng.randint(20, 90)
            b = rng.randint(3, a - 5)
            q = f"{name} had {a} {item} and gave {b} of them to a friend. How many {item} does {name} have left?"
            ans = f"{a} - {b} = {a - b}, so {name} has {a - b} {item} left."
        elif kind == 2:
            a, b = rng.randint(3, 12), rng.randint(2, 9)
            q = f"A box holds {a} {item}. How many {item} are there in {b} boxes?"
            ans = f"{b} boxes with {a} {item} each hold {b} × {a} = {a * b} {item}."
        elif kind == 3:
            a, b = rng.randint(2, 12), rng.randint(2, 6)
            q = f"{name} shares {a * b} {item} equally among {b} friends. How many {item} does each friend get?"
            ans = f"Each friend gets {a * b} ÷ {b} = {a} {item}."
        elif kind == 4:
            p, c, k = rng.randint(2, 9), rng.randint(1, 5), rng.randint(2, 5)
            q = (f"A notebook costs ${p} and a pen costs ${c}. How much do {k} notebooks "
                 f"and one pen cost in total?")
            ans = f"{k} notebooks cost {k} × ${p} = ${k * p}. Adding the pen gives ${k * p} + ${c} = ${k * p + c}."
        else:
            start, dur = rng.randint(1, 7), rng.randint(2, 4)
            q = (f"A bus leaves at {start}:00 pm and the trip takes {dur} hours. "
                 f"At what time does the bus arrive?")
            ans = f"{start}:00 pm plus {dur} hours is {start + dur}:00 pm, so the bus arrives at {start + dur}:00 pm."
        if i % 2 == 0:
            out.append(_rec("Solve the following word problem.", q, ans))
        else:
            out.append(_rec(q, "", ans))
    return out


def _fmt(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


UNITS = [  # from (plural), to (plural), factor, singular-from, singular-to
    ("kilometers", "meters", 1000, "kilometer", "meter"),
    ("meters", "centimeters", 100, "meter", "centimeter"),
    ("centimeters", "millimeters", 10, "centimeter", "millimeter"),
    ("kilograms", "grams", 1000, "kilogram", "gram"),
    ("liters", "milliliters", 1000, "liter", "milliliter"),
    ("hours", "minutes", 60, "hour", "minute"),
    ("minutes", "seconds", 60, "minute", "second"),
    ("days", "hours", 24, "day", "hour"),
    ("weeks", "days", 7, "week", "day"),
    ("feet", "inches", 12, "foot", "inch"),
    ("yards", "feet", 3, "yard", "foot"),
    ("dollars", "cents", 100, "dollar", "cent"),
]


def gen_units(rng: random.Random, n: int) -> list[dict]:
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 5:  # temperature, exact values only
            if i % 12 == 5:
                c = rng.choice([0, 5, 10, 15, 20, 25, 30, 35, 40, 100])
                f = c * 9 // 5 + 32
                q = f"{c} degrees Celsius"
                ans = f"{c} degrees Celsius is {f} degrees Fahrenheit, since F = C × 9/5 + 32."
                instr = "Convert the following temperature to Fahrenheit."
            else:
                f = rng.choice([32, 41, 50, 59, 68, 77, 86, 95, 104, 212])
                c = (f - 32) * 5 // 9
                q = f"{f} degrees Fahrenheit"
                ans = f"{f} degrees Fahrenheit is {c} degrees Celsius, since C = (F - 32) × 5/9."
                instr = "Convert the following temperature to Celsius."
            out.append(_rec(instr, q, ans))
            continue
        frm, to, fac, s_frm, s_to = rng.choice(UNITS)
        if i % 4 == 3:  # reverse direction with an exact result
            v = rng.randint(2, 9) * fac
            res = v // fac
            ans = (f"{_fmt(v)} {to} is equal to {_fmt(res)} {frm if res != 1 else s_frm}, "
                   f"because there are {_fmt(fac)} {to} in one {s_frm}.")
            q = f"How many {frm} are in {_fmt(v)} {to}?"
        else:
            v = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 1.5, 2.5])
            res = v * fac
            ans = (f"{_fmt(v)} {frm} is equal to {_fmt(res)} {to}, "
                   f"because one {s_frm} has {_fmt(fac)} {to}.")
            q = f"How many {to} are in {_fmt(v)} {frm}?"
        if i % 3 == 0:
            out.append(_rec("Answer the following unit conversion question.", q, ans))
        else:
            out.append(_rec(q, "", ans))
    return out


CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"),
            ("Kenya", "Nairobi"), ("India", "New Delhi"), ("China", "Beijing"), ("Russia", "Moscow"),
            ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"), ("Portugal", "Lisbon"),
            ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Poland", "Warsaw"),
            ("Ireland", "Dublin"), ("Turkey", "Ankara"), ("Thailand", "Bangkok"),
            ("South Korea", "Seoul"), ("Peru", "Lima"), ("Austria", "Vienna"), ("Finland", "Helsinki"),
            ("Denmark", "Copenhagen"), ("Hungary", "Budapest"), ("Cuba", "Havana"), ("Brazil", "Brasília")]


def gen_capitals(rng: random.Random, n: int) -> list[dict]:
    pairs = rng.sample(CAPITALS, n)
    out = []
    for i, (country, cap) in enumerate(pairs):
        if i % 3 == 0:
            out.append(_rec(f"Which country has {cap} as its capital?", "", f"{cap} is the capital of {country}."))
        else:
            out.append(_rec(f"What is the capital of {country}?", "", f"The capital of {country} is {cap}."))
    return out


ANTONYMS = [("hot", "cold"), ("big", "small"), ("happy", "sad"), ("fast", "slow"), ("open", "closed"),
            ("early", "late"), ("full", "empty"), ("strong", "weak"), ("young", "old"), ("rich", "poor"),
            ("hard", "soft"), ("wet", "dry"), ("loud", "quiet"), ("clean", "dirty"), ("buy", "sell"),
            ("win", "lose"), ("push", "pull"), ("remember", "forget"), ("ancient", "modern"),
            ("accept", "refuse"), ("heavy", "light"), ("arrive", "depart"), ("increase", "decrease"),
            ("victory", "defeat"), ("brave", "cowardly")]
SYNONYMS = [("happy", "joyful"), ("big", "large"), ("quick", "fast"), ("smart", "intelligent"),
            ("begin", "start"), ("angry", "furious"), ("small", "tiny"), ("difficult", "hard"),
            ("beautiful", "pretty"), ("shout", "yell"), ("silent", "quiet"), ("choose", "select"),
            ("enormous", "huge"), ("scared", "afraid")]


def gen_words(rng: random.Random, n_ant: int, n_syn: int) -> list[dict]:
    out = []
    for i, (a, b) in enumerate(rng.sample(ANTONYMS, n_ant)):
        w, o = (a, b) if i % 2 == 0 else (b, a)
        out.append(_rec(f'What is the opposite of "{w}"?', "", f'The opposite of "{w}" is "{o}".'))
    for a, b in rng.sample(SYNONYMS, n_syn):
        out.append(_rec(f'Give a synonym for the word "{a}".', "", f'A synonym for "{a}" is "{b}".'))
    return out


SORT_WORDS = ["river", "apple", "mountain", "candle", "zebra", "garden", "orange", "pencil", "window",
              "butter", "lemon", "kettle", "island", "violin", "tiger", "honey", "desert", "forest",
              "jacket", "ladder", "needle", "quilt", "yellow", "engine"]


def gen_lists(rng: random.Random, n_sort: int, n_alpha: int, n_max: int) -> list[dict]:
    out = []
    for i in range(n_sort):
        nums = rng.sample(range(1, 100), rng.randint(5, 7))
        asc = i % 3 != 2
        res = sorted(nums, reverse=not asc)
        order = "smallest to largest" if asc else "largest to smallest"
        out.append(_rec(f"Sort these numbers from {order}.", ", ".join(map(str, nums)),
                        ", ".join(map(str, res))))
    for _ in range(n_alpha):
        words = rng.sample(SORT_WORDS, rng.randint(4, 6))
        out.append(_rec("Put the following words in alphabetical order.", ", ".join(words),
                        ", ".join(sorted(words))))
    for i in range(n_max):
        nums = rng.sample(range(1, 500), rng.randint(5, 8))
        if i % 2 == 0:
            out.append(_rec("Which number in the following list is the largest?", ", ".join(map(str, nums)),
                            f"The largest number is {max(nums)}."))
        else:
            out.append(_rec("Which number in the following list is the smallest?", ", ".join(map(str, nums)),
                            f"The smallest number is {min(nums)}."))
    return out


LETTER_WORDS = ["elephant", "banana", "library", "strawberry", "computer", "mississippi", "umbrella",
                "butterfly", "chocolate", "keyboard", "penguin", "tomorrow", "holiday", "volcano",
                "telescope", "pineapple", "committee", "balloon", "alphabet", "sunflower"]
WORD_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "My sister plays the violin every evening after dinner.",
    "We visited the old castle on a rainy Sunday afternoon.",
    "Please remember to water the plants while I am away.",
    "The small boat drifted slowly toward the sandy shore.",
    "Reading a good book is a wonderful way to relax.",
    "Our teacher gave us a surprise quiz this morning.",
]


def gen_letters(rng: random.Random, n_letters: int, n_vowel: int, n_rev: int, n_count_words: int) -> list[dict]:
    out = []
    words = rng.sample(LETTER_WORDS, n_letters + n_vowel + n_rev)
    for w in words[:n_letters]:
        out.append(_rec(f'How many letters are in the word "{w}"?', "", f'The word "{w}" has {len(w)} letters.'))
    for w in words[n_letters:n_letters + n_vowel]:
        vowels = [c for c in w if c in "aeiou"]
        out.append(_rec("Count the vowels (a, e, i, o, u) in the following word.", w,
                        f'"{w}" has {len(vowels)} vowels: {", ".join(vowels)}.'))
    for w in words[n_letters + n_vowel:]:
        out.append(_rec(f'Spell the word "{w}" backwards.', "", w[::-1]))
    for s in rng.sample(WORD_SENTENCES, n_count_words):
        k = len(s.split())
        out.append(_rec("How many words are in the following sentence?", s, f"The sentence has {k} words."))
    return out


TRANSLATIONS = {  # English: (Spanish, French, German)
    "dog": ("perro", "chien", "Hund"), "cat": ("gato", "chat", "Katze"),
    "house": ("casa", "maison", "Haus"), "water": ("agua", "eau", "Wasser"),
    "book": ("libro", "livre", "Buch"), "apple": ("manzana", "pomme", "Apfel"),
    "bread": ("pan", "pain", "Brot"), "sun": ("sol", "soleil", "Sonne"),
    "school": ("escuela", "école", "Schule"), "milk": ("leche", "lait", "Milch"),
    "tree": ("árbol", "arbre", "Baum"), "moon": ("luna", "lune", "Mond"),
    "red": ("rojo", "rouge", "rot"), "thank you": ("gracias", "merci", "danke"),
    "good morning": ("buenos días", "bonjour", "guten Morgen"), "three": ("tres", "trois", "drei"),
}
LANGS = ["Spanish", "French", "German"]


def gen_translations(rng: random.Random, n: int) -> list[dict]:
    combos = [(w, li) for w in TRANSLATIONS for li in range(3)]
    out = []
    for w, li in rng.sample(combos, n):
        t = TRANSLATIONS[w][li]
        out.append(_rec(f'Translate the English word "{w}" into {LANGS[li]}.', "",
                        f'In {LANGS[li]}, "{w}" is "{t}".'))
    return out


def _factor(n: int) -> list[int]:
    f, d = [], 2
    while d * d <= n:
        while n % d == 0:
            f.append(d)
            n //= d
        d += 1
    if n > 1:
        f.append(n)
    return f


def gen_numbers(rng: random.Random, n_parity: int, n_prime: int, n_pct: int, n_rect: int) -> list[dict]:
    out = []
    for x in rng.sample(range(11, 999), n_parity):
        kind = "even" if x % 2 == 0 else "odd"
        why = "it is divisible by 2" if x % 2 == 0 else "it leaves a remainder of 1 when divided by 2"
        out.append(_rec(f"Is {x} an even or an odd number?", "", f"{x} is {kind}, because {why}."))
    for x in rng.sample(range(10, 100), n_prime):
        f = _factor(x)
        if len(f) == 1:
            ans = f"Yes, {x} is a prime number. Its only divisors are 1 and {x}."
        else:
            ans = f"No, {x} is not a prime number, because {x} = {' × '.join(map(str, f))}."
        out.append(_rec(f"Is {x} a prime number?", "", ans))
    for _ in range(n_pct):
        p = rng.choice([10, 20, 25, 50, 75])
        base = rng.randint(2, 40) * 20
        res = base * p // 100
        out.append(_rec(f"What is {p}% of {base}?", "", f"{p}% of {base} is {base} × {p}/100 = {res}."))
    for i in range(n_rect):
        a, b = rng.randint(2, 15), rng.randint(2, 15)
        if i % 2 == 0:
            out.append(_rec(f"A rectangle is {a} cm long and {b} cm wide. What is its area?", "",
                            f"The area is length × width = {a} × {b} = {a * b} square centimeters."))
        else:
            out.append(_rec(f"A rectangle is {a} cm long and {b} cm wide. What is its perimeter?", "",
                            f"The perimeter is 2 × ({a} + {b}) = {2 * (a + b)} cm."))
    return out


PLURALS = [("mouse", "mice"), ("child", "children"), ("tooth", "teeth"), ("foot", "feet"),
           ("person", "people"), ("woman", "women"), ("goose", "geese"), ("leaf", "leaves"),
           ("knife", "knives"), ("box", "boxes"), ("city", "cities"), ("baby", "babies"),
           ("sheep", "sheep"), ("potato", "potatoes")]
PAST = [("go", "went"), ("eat", "ate"), ("run", "ran"), ("see", "saw"), ("write", "wrote"),
        ("swim", "swam"), ("buy", "bought"), ("think", "thought"), ("bring", "brought"),
        ("teach", "taught"), ("catch", "caught"), ("fly", "flew"), ("drink", "drank"), ("sing", "sang"),
        ("take", "took"), ("begin", "began"), ("speak", "spoke"), ("choose", "chose"),
        ("break", "broke"), ("sleep", "slept")]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def gen_grammar(rng: random.Random, n_pl: int, n_past: int, n_cal: int) -> list[dict]:
    out = []
    for s, p in rng.sample(PLURALS, n_pl):
        extra = " The singular and plural forms are the same." if s == p else ""
        out.append(_rec(f'What is the plural of "{s}"?', "", f'The plural of "{s}" is "{p}".{extra}'))
    for v, p in rng.sample(PAST, n_past):
        out.append(_rec(f'What is the past tense of the verb "{v}"?', "", f'The past tense of "{v}" is "{p}".'))
    for i in range(n_cal):
        if i % 2 == 0:
            k = rng.randrange(7)
            if i % 4 == 0:
                out.append(_rec(f"What day comes after {DAYS[k]}?", "", f"{DAYS[(k + 1) % 7]} comes after {DAYS[k]}."))
            else:
                out.append(_rec(f"What day comes before {DAYS[k]}?", "", f"{DAYS[k - 1]} comes before {DAYS[k]}."))
        else:
            k = rng.randrange(12)
            out.append(_rec(f"Which month comes after {MONTHS[k]}?", "", f"{MONTHS[(k + 1) % 12]} comes after {MONTHS[k]}."))
    return out


def _hand_records(block: str) -> list[dict]:
    return [_rec(i.replace("\\n", "\n"), x.replace("\\n", "\n"), o.replace("\\n", "\n"))
            for i, x, o in _rows(block, 3)]


def _instruction_pool() -> tuple[list[dict], list[dict], list[dict]]:
    """(the 400 records of instructions.json, template records generated but not used there,
    hand-written records). The unused template records are the held-out set's templated part."""
    hand = _hand_records(INSTR_HAND)
    rng = random.Random(SEED + 1)
    templ = (gen_arithmetic(rng, 36) + gen_units(rng, 30) + gen_capitals(rng, 20)
             + gen_words(rng, 16, 8) + gen_lists(rng, 10, 8, 8) + gen_letters(rng, 7, 7, 6, 6)
             + gen_translations(rng, 18) + gen_numbers(rng, 6, 10, 8, 8) + gen_grammar(rng, 8, 12, 10))
    # de-duplicate by instruction+input, keep the first occurrence
    seen, uniq = set(), []
    for r in hand + templ:
        key = (r["instruction"], r["input"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    n_hand = len(hand)
    hand_u, templ_u = uniq[:n_hand], uniq[n_hand:]
    need = 400 - len(hand_u)
    if need > len(templ_u):
        raise RuntimeError(f"not enough template items: need {need}, have {len(templ_u)}")
    rng.shuffle(templ_u)
    records = hand_u + templ_u[:need]
    random.Random(SEED + 2).shuffle(records)
    return records, templ_u[need:], hand_u


def build_instructions() -> list[dict]:
    return _instruction_pool()[0]


# Held-out instruction texts: written for this set only; none of them is in instructions.json.
HELDOUT_HAND = r"""
Explain why ice floats on water.||Water expands when it freezes, so ice is less dense than liquid water. Anything less dense than the liquid around it floats, which is why ice cubes bob at the top of a glass and lakes freeze from the surface down.
What does a thermometer measure?||A thermometer measures temperature, how hot or cold something is, usually in degrees Celsius or Fahrenheit.
Give two reasons why people keep dogs as pets.||1. Dogs are loyal and friendly companions.\n2. Many dogs help their owners, for example by guarding a house or guiding a person who cannot see.
Describe what a library is for.||A library is a place that collects books, newspapers and other media so that people can borrow them, read them or study there, usually for free.
Rewrite the sentence in the past tense.|I walk to the park and feed the ducks.|I walked to the park and fed the ducks.
Why do we wear coats in winter?||In winter the air is cold, and our bodies lose heat quickly. A coat traps a layer of warm air close to the body, which keeps us warm.
What is the job of the heart?||The heart is a muscle that pumps blood around the body. The blood carries oxygen and food to every cell and takes waste away.
Suggest a name for a small bakery.||A friendly name for a small bakery could be "The Morning Loaf".
Explain what a map is used for.||A map is a drawing of an area seen from above. People use maps to find places, plan a route and see how far apart things are.
Summarize the text in one sentence.|The town built a new bridge over the river last spring. Before that, people had to drive twenty minutes to the next crossing.|Since last spring a new bridge has saved the town's people a twenty-minute drive to cross the river.
Why is it important to brush your teeth?||Brushing removes food and the bacteria that feed on it. Without brushing, the bacteria make acids that damage teeth and cause cavities and sore gums.
What happens to a puddle on a sunny day?||The sun warms the water, and it slowly evaporates into the air as water vapor until the puddle is gone.
Name three things you might pack for a beach trip.||Sunscreen, a towel and a bottle of water.
Classify each item as a fruit or a vegetable.|banana, carrot, cherry|Banana: fruit. Carrot: vegetable. Cherry: fruit.
Write a polite reply declining an invitation to dinner.||Thank you so much for inviting me to dinner. I am sorry, but I already have plans that evening. I hope we can meet another time soon.
Explain why the Moon seems to change shape.||The Moon does not make its own light; it reflects sunlight. As it orbits Earth we see different amounts of its sunlit half, so it appears to grow and shrink in phases.
"""


def heldout_text(record: dict) -> str:
    """The calibration format followed by the answer (as mop/models/data.py `calibration_prompt` writes
    it), i.e. the text whose perplexity the task measures."""
    if record["input"]:
        prompt = f"Instruction: {record['instruction']}\nInput: {record['input']}\nResponse:"
    else:
        prompt = f"Instruction: {record['instruction']}\nResponse:"
    return prompt + " " + record["output"]


def build_heldout() -> list[dict]:
    """Held-out records (hand-written ones, then unused template ones), checked disjoint from the
    400 training records, each with the `text` the perplexity task scores."""
    training, unused_templates, _ = _instruction_pool()
    seen = {(r["instruction"], r["input"]) for r in training}
    docs = []
    for record in _hand_records(HELDOUT_HAND) + unused_templates:
        key = (record["instruction"], record["input"])
        if key in seen:
            raise RuntimeError(f"held-out record also in the training set: {key}")
        seen.add(key)
        docs.append({**record, "text": heldout_text(record)})
    return docs


# ---------------------------------------------------------------------------
# Multiple-choice builders with balanced, seeded answer positions.
# ---------------------------------------------------------------------------
def _balanced_positions(n: int, k: int, rng: random.Random) -> list[int]:
    pos = [i % k for i in range(n)]
    rng.shuffle(pos)
    return pos


def _place(gold: str, distractors: list[str], pos: int, rng: random.Random) -> list[str]:
    d = list(distractors)
    rng.shuffle(d)
    return d[:pos] + [gold] + d[pos:]


def build_arc() -> list[dict]:
    rows = _rows(ARC, 5)
    rng = random.Random(SEED + 10)
    rng.shuffle(rows)
    positions = _balanced_positions(len(rows), 4, rng)
    docs = []
    for i, (row, pos) in enumerate(zip(rows, positions)):
        q, gold, *dis = row
        docs.append({"id": f"mop_arc_{i:03d}", "question": q,
                     "choices": _place(gold, dis, pos, rng), "label": pos})
    return docs


def build_piqa() -> list[dict]:
    rows = _rows(PIQA, 3)
    rng = random.Random(SEED + 20)
    rng.shuffle(rows)
    positions = _balanced_positions(len(rows), 2, rng)
    docs = []
    for i, ((goal, good, bad), pos) in enumerate(zip(rows, positions)):
        docs.append({"id": f"mop_piqa_{i:03d}", "goal": goal,
                     "choices": _place(good, [bad], pos, rng), "label": pos})
    return docs


def build_hellaswag() -> list[dict]:
    rows = _rows(HELLASWAG, 4)
    rng = random.Random(SEED + 30)
    rng.shuffle(rows)
    positions = _balanced_positions(len(rows), 4, rng)
    docs = []
    for i, ((subj, topic, ctx, gold), pos) in enumerate(zip(rows, positions)):
        # candidates: endings of the same subject type (pronoun / agreement fit),
        # different topic; take three among the ten closest in length.
        cands = [r[3] for r in rows if r[0] == subj and r[1] != topic and r[3] != gold]
        cands.sort(key=lambda e: (abs(len(e) - len(gold)), e))
        dis = rng.sample(cands[:10], 3)
        docs.append({"id": f"mop_hellaswag_{i:03d}", "ctx": ctx, "topic": topic,
                     "endings": _place(gold, dis, pos, rng), "label": pos})
    return docs


def _length_baselines(docs: list[dict], key: str) -> tuple[float, float]:
    longest = sum(max(range(len(d[key])), key=lambda j: len(d[key][j])) == d["label"] for d in docs)
    shortest = sum(min(range(len(d[key])), key=lambda j: len(d[key][j])) == d["label"] for d in docs)
    return longest / len(docs), shortest / len(docs)


def _write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")


def check_instructions(records: list[dict]) -> None:
    assert isinstance(records, list) and len(records) == 400, len(records)
    for r in records:
        assert set(r) == {"instruction", "input", "output"}, r
        assert all(isinstance(r[k], str) for k in r), r
        assert r["instruction"].strip() and r["output"].strip(), r
    keys = [(r["instruction"], r["input"]) for r in records]
    assert len(set(keys)) == len(keys), "duplicate instruction/input pairs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only verify the files on disk are up to date")
    args = ap.parse_args(argv)

    records = build_instructions()
    check_instructions(records)
    outputs = {INSTR_PATH: json.dumps(records, ensure_ascii=False, indent=1) + "\n"}
    heldout = build_heldout()
    outputs[HELDOUT_PATH] = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in heldout)
    print(f"held-out: {len(heldout)} records")
    tasks = {"mop_arc": (build_arc(), "choices", 4), "mop_piqa": (build_piqa(), "choices", 2),
             "mop_hellaswag": (build_hellaswag(), "endings", 4)}
    for name, (docs, key, k) in tasks.items():
        assert len(docs) >= 180, (name, len(docs))
        assert all(len(d[key]) == k and len(set(d[key])) == k for d in docs), name
        outputs[TASK_DIR / f"{name}.jsonl"] = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
        counts = Counter(d["label"] for d in docs)
        lo, sh = _length_baselines(docs, key)
        print(f"{name}: {len(docs)} items, gold positions {dict(sorted(counts.items()))}, "
              f"pick-longest {lo:.3f}, pick-shortest {sh:.3f}, chance {1 / k:.3f}")
    n_inp = sum(1 for r in records if r["input"])
    print(f"instructions: {len(records)} records, {n_inp} with input, "
          f"{len(outputs[INSTR_PATH].encode()) / 1024:.1f} KB")

    stale = []
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
