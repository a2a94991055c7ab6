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
How can I soften hard butter quickly?|Leave it out at room temperature for a while.|Put it in the freezer for an hour.
How can I carry a lot of groceries at once?|Use a large sturdy shopping bag.|Use a small paper envelope.
How do I safely reach something on a high shelf?|Stand on a sturdy step stool.|Stand on a spinning office chair.
How do I clean a window?|Spray it with glass cleaner and wipe it with a cloth.|Spray it with honey and wipe it with a dry leaf.
How can I tell if a cake is baked all the way through?|Insert a toothpick in the middle and check that it comes out clean.|Tap the top of the cake and check that it makes a loud ringing sound.
How do I keep food from sticking to a frying pan?|Add a little oil to the pan before cooking.|Add a little sugar to the empty pan and wait.
How do I fix a flat bicycle tire?|Patch the hole and pump air into the tube.|Paint the tire and let more air out.
How can I cool a room on a hot day?|Turn on a fan and close the curtains.|Turn on the oven and open the curtains.
How do I wash my hands properly?|Scrub them with soap and water for twenty seconds.|Wipe them quickly on your trousers.
How do I help a plant grow well?|Give it sunlight, water and good soil.|Keep it in a dark box without water.
How do I melt chocolate for baking?|Heat it gently in a bowl over warm water.|Put it in the freezer until it is soft.
How do I fold a shirt neatly?|Lay it flat, fold in the sleeves, then fold it in half.|Roll it into a ball and throw it into the drawer.
How do I fill a balloon with air?|Blow into its opening and tie a knot.|Poke a hole in it and squeeze it.
How can I stay dry when it starts raining?|Open an umbrella over your head.|Hold a sieve over your head.
How can I find a lost earring on the carpet?|Shine a flashlight low across the carpet.|Turn off all the lights and close your eyes.
How should I take care of a small cut?|Wash it and cover it with a bandage.|Rub some dirt on it and leave it open.
How do I cook rice?|Simmer it in water until the water is absorbed.|Soak it in cold oil for a few seconds.
How do I loosen a screw?|Turn it counterclockwise with a screwdriver.|Tap it gently with a feather.
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
How do I thread a needle?|Push the end of the thread through the small hole.|Wrap the thread around the sharp tip.
How do I seal an envelope?|Moisten the flap or use a glue stick and press it shut.|Cut the flap off and leave it open.
How do I stop a small cut from bleeding?|Press a clean cloth firmly on the cut.|Run around the room as fast as you can.
How can I keep my houseplant alive while I am on vacation?|Ask a neighbor to water it.|Put it in a closet with no light.
How should I help someone who feels faint from the heat?|Move them into the shade and give them cool water.|Wrap them in blankets and give them hot soup.
How can I keep my feet warm at night?|Wear thick socks to bed.|Sleep with your feet out of the window.
How do I clean a muddy dog?|Wash it with dog shampoo and warm water.|Roll it in more mud and leave it outside.
How do I make popcorn?|Heat corn kernels in a covered pot with a little oil.|Soak corn kernels in cold water overnight.
How do I sweeten a cup of tea?|Stir in a spoonful of honey or sugar.|Stir in a spoonful of salt or pepper.
How can I find out what the weather will be tomorrow?|Check the weather forecast.|Look at old photos from last year.
How can I keep papers from blowing away outside?|Put a heavy stone on top of them.|Put a light feather on top of them.
How do I paint a wall evenly?|Use a roller and apply thin coats.|Throw the paint at the wall from far away.
How can I protect a wooden table from a hot pot?|Put a thick mat under the pot.|Put an ice cube under the pot.
How do I make a fruit smoothie?|Blend fruit with yogurt or milk.|Boil fruit with sand and salt.
How can I keep a door from closing by itself?|Place a doorstop against it.|Place a balloon against it.
How can I fall asleep on a noisy night?|Wear earplugs.|Turn on a loud radio.
How can I check whether a stove burner is still hot?|Hold your hand above it without touching it.|Press your palm flat on it for ten seconds.
How should I carry soup to a friend's house?|Pour it into a container with a tight lid.|Pour it into an open paper bag.
How do I catch a ball?|Watch it closely and close your hands around it.|Close your eyes and turn around.
What is a safe way to learn to swim?|Take lessons with an instructor in a shallow pool.|Jump alone into the deep sea at night.
How can I keep a notebook dry in my backpack?|Put it in a plastic bag.|Put it next to an open water bottle.
How can I avoid getting lost in a big city?|Use a map app on your phone.|Walk in a random direction all day.
How do I freshen up stale bread?|Sprinkle it with water and warm it in the oven.|Leave it out in the sun for a week.
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
How do I find a small hole in a bike tube?|Pump it up and dip it in water to look for bubbles.|Let all the air out and shake it gently.
How do I get a kite to fly?|Run into the wind while holding the string.|Stand still indoors with the windows closed.
How do I hammer a nail into wood?|Hold the nail steady and tap it with a hammer.|Hold the hammer steady and tap it with the nail.
How do I dry my hair after a shower?|Use a towel or a hair dryer.|Use a bowl of cold water.
How can I avoid a sunburn at the beach?|Sit under an umbrella and wear a hat.|Lie in the direct sun at noon without sunscreen.
How do I make a cup of tea?|Steep a tea bag in hot water for a few minutes.|Steep a tea bag in cold oil for a few seconds.
How do I rinse fresh vegetables?|Hold them under cool running water.|Hold them over a hot stove.
How do I sew a button onto a shirt?|Stitch through the holes of the button and the fabric.|Glue the button to the end of the needle.
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
How do I file a letter in an alphabetical filing cabinet?|Find the folder with its first letter and place it inside.|Put it on top of the cabinet and walk away.
How do I keep a baby safe in a car?|Buckle it into a proper car seat.|Let it sit loose on the front seat.
How can I carry hot coffee without spilling it?|Use a travel mug with a lid.|Use a plate.
How do I stop a slice of apple from turning brown?|Squeeze a little lemon juice on it.|Leave it out in the warm air.
How do I get gum off the bottom of my shoe?|Harden it with an ice cube and scrape it off.|Heat it with a hair dryer and step on a carpet.
How do I cook an egg in a pan?|Crack it into a hot oiled pan and cook until set.|Crack it into a cold dry cup and leave it overnight.
How do I keep flowers fresh in a vase?|Change the water every day and trim the stems.|Leave the vase empty and put it in the sun.
How do I stop my glasses from sliding down my nose?|Have the frames adjusted to fit snugly.|Put butter on the nose pads.
How do I make a room darker for sleeping?|Close thick curtains over the windows.|Open all the curtains and turn on the lights.
How can I get a stubborn stain out of a shirt?|Soak it in cold water with detergent before washing.|Rub it with chocolate and leave it in the sun.
How do I take a splinter out of a dog's paw?|Hold the paw gently and pull the splinter out with tweezers.|Tell the dog to run around until the splinter falls out.
How can I keep ants out of my kitchen?|Wipe up crumbs and store food in sealed containers.|Leave sticky jam spread on the floor near the door.
How do I give a cat a bath?|Use a little warm water and gentle cat shampoo.|Throw the cat into a cold swimming pool.
How can I cool down after a long run?|Walk slowly for a few minutes and drink water.|Sprint even faster and skip drinking water.
How do I keep rice from sticking to the pot?|Rinse it first and stir it once while cooking.|Cook it with no water on the highest heat.
How do I hang wet laundry indoors?|Drape it on a drying rack near a warm spot.|Pile it in a heap inside a closed closet.
How do I keep a tent from blowing away?|Push stakes into the ground through its loops.|Tie it to a balloon in the middle.
How do I move a sofa through a narrow door?|Tip it on its side and turn it slowly through the doorway.|Push it straight at the door as hard as you can.
How can I tell if milk has gone bad?|Smell it and check for a sour odor.|Shake the carton and listen for bells.
How do I cool a hot car before driving?|Open the windows and turn on the air conditioning.|Close the windows and turn on the heater.
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
How do I put a fitted sheet on a bed?|Stretch each corner over a corner of the mattress.|Fold it small and place it on the pillow.
How do I make a hole in a belt?|Use a leather punch at the spot you need.|Use a pair of chopsticks to press on it.
How do I clean a stovetop after cooking?|Let it cool and wipe it with a soapy sponge.|Pour flour on it while it is still hot.
How do I measure the length of a room?|Stretch a tape measure from one wall to the other.|Count the number of lamps in the room.
How do I make a quick ice pack?|Put a bag of frozen peas in a towel.|Put a bag of warm bread in a towel.
How can I keep a sandwich from getting squashed in my bag?|Pack it in a hard plastic box.|Pack it under a stack of heavy books.
How do I make a window stop rattling in the wind?|Push a folded piece of cardboard into the gap.|Open the window wider so it swings more.
How do I stop water from dripping from a tap?|Turn the handle until it is fully closed.|Hit the tap with a heavy hammer.
How do I get a cat down from a low branch?|Hold out a treat and let it climb onto a ladder.|Shake the tree as hard as you can.
How do I water a lawn evenly?|Use a sprinkler that moves back and forth.|Pour one bucket of water in one corner.
How can I avoid getting blisters on a long walk?|Wear well-fitting shoes and thick socks.|Wear tight new shoes with no socks.
How do I keep a cut flower standing in a vase?|Trim the stem and put it in water.|Remove the stem and put it in sand.
How do I wash a wool sweater?|Hand wash it gently in cool water.|Boil it in a pot for an hour.
How do I make a clay pot hard?|Let it dry and then bake it in a kiln.|Keep it wet and store it in the fridge.
How do I stop a tablecloth from blowing off an outdoor table?|Clip it to the edges of the table.|Put a paper cup in the middle.
How can I make a long car trip less boring for kids?|Bring books, games and snacks.|Turn off the radio and ban talking.
How do I get sand off my feet after the beach?|Rinse them with water or brush them with a towel.|Rub them with more dry sand.
How do I make a simple salad?|Chop lettuce and vegetables and toss them with dressing.|Boil lettuce for an hour and pour away the vegetables.
How do I keep a rug from sliding on a wood floor?|Put a non-slip pad under it.|Put a sheet of wax paper under it.
How can I make my handwriting smaller?|Write slowly with a fine pen.|Write quickly with a thick paint brush.
How can I find the right bus home?|Check the route number at the bus stop.|Get on the first bus you see.
How do I keep my drink from getting watered down?|Use frozen fruit instead of ice cubes.|Add a cup of water every few minutes.
How do I stop my bike chain from squeaking?|Put a little bike oil on the chain.|Put a little honey on the chain.
How can I find a book quickly in a library?|Look it up in the catalog and go to its shelf number.|Start at the front door and read every book.
How do I hold a baby safely?|Support its head and neck with one hand.|Hold it upside down by one foot.
How can I keep a puzzle from getting messed up?|Build it on a board you can cover.|Build it on the floor near the door.
How do I make a pot of soup thicker?|Let it simmer uncovered for longer.|Add several cups of cold water.
"""
